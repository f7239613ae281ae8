"""Search text deferred at ingest and filled in later, by the store and by `gateway serve`'s
background indexer (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.ingest_worker import worker_ready
from gateway.search_indexer import SearchIndexer
from gateway.store import MailStore, NewMessage, open_store
from gateway.store.base import WARM_WORKERS_AT
from gateway.store.search_data import SearchFields
from gateway.store.search_index import _COUNT_PENDING, _PENDING
from tests.support.corpus import generate_corpus
from tests.support.fixtures_store import PostgresDatabase, make_settings

SEARCH_FIELDS = ["body_text", "body_text_truncated", "header_text", "subject", "from_addr"]
ATTACHMENT_ONLY = (
    b"Subject: a file\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
)


def _inbox(store: MailStore, name: str = "indexer") -> int:
    user = store.create_user(name=name, password="pw")
    return store.get_mailbox(user_id=user.id, name="INBOX").id


def _fields(store: MailStore, message_ids: list[int]) -> list[SearchFields]:
    found = store.search_message_fields(message_ids=message_ids, fields=SEARCH_FIELDS)
    return [found[message_id] for message_id in message_ids]


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def test_indexing_stores_what_an_indexing_ingest_stores(store: MailStore) -> None:
    inbox = _inbox(store)
    corpus = list(generate_corpus(40, seed=11))
    # 40 messages per call: both ingest and indexing go through the worker processes.
    deferred = store.append_messages(
        items=[NewMessage(inbox, raw) for raw in corpus], defer_search_text=True
    )
    other = _inbox(store, "other")
    direct = store.append_messages(items=[NewMessage(other, raw) for raw in corpus])
    deferred_ids = [r.message_id for r in deferred]
    pending = store.count_pending_search_text()
    assert 0 < pending <= len(corpus)
    assert all(f.body_text == "" for f in _fields(store, deferred_ids))

    assert store.index_search_text(limit=25) == 25
    assert store.index_search_text() == pending - 25
    assert store.index_search_text() == 0
    assert store.count_pending_search_text() == 0

    indexed = _fields(store, deferred_ids)
    assert indexed == _fields(store, [r.message_id for r in direct])


def test_a_message_without_text_parts_needs_no_indexing(store: MailStore) -> None:
    inbox = _inbox(store)
    store.append_messages(items=[NewMessage(inbox, ATTACHMENT_ONLY)], defer_search_text=True)
    assert store.count_pending_search_text() == 0


def test_a_missing_blob_is_reported_once_and_not_retried(
    store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = _inbox(store)
    [result] = store.append_messages(
        items=[NewMessage(inbox, b"Subject: x\r\n\r\ntext\r\n")], defer_search_text=True
    )
    digest = store.fetch_message_data(message_ids=[result.message_id], columns={"blob_hash"})[
        result.message_id
    ].blob_hash
    assert digest is not None
    store.blobs.path_for(digest).unlink()
    with caplog.at_level(logging.WARNING, logger="gateway.store"):
        assert store.index_search_text() == 1
    assert "search_index_skipped" in caplog.text
    assert store.index_search_text() == 0


def test_the_background_indexer_catches_up_after_a_quiet_moment(store: MailStore) -> None:
    inbox = _inbox(store)

    async def scenario() -> None:
        items = [NewMessage(inbox, raw) for raw in generate_corpus(30, seed=5)]
        store.append_messages(items=items, defer_search_text=True)
        waiting = store.count_pending_search_text()
        assert waiting > 0
        indexer = SearchIndexer(store, quiet_seconds=0.3, poll_seconds=30)

        async def until_indexed() -> None:
            # A batch commits before the indexer counts it: wait for both.
            await _until(lambda: not store.count_pending_search_text() and indexer._batch is None)
            assert store.count_pending_search_text() == 0

        await indexer.start()
        try:
            await until_indexed()  # what was waiting at start
            assert indexer.indexed == waiting
            # ...and what a commit announces later, without waiting for the 30 s poll.
            more = [NewMessage(inbox, raw) for raw in generate_corpus(10, seed=6)]
            await asyncio.to_thread(store.append_messages, items=more, defer_search_text=True)
            await until_indexed()
            assert indexer.indexed > waiting
        finally:
            await indexer.stop()

    asyncio.run(scenario())


def test_text_decoded_for_an_expunged_message_never_lands_on_a_new_one(store: MailStore) -> None:
    """SQLite reuses the id of the newest deleted row: the text of Alice's expunged message,
    decoded while Bob's new message took its id, must not be stored on Bob's."""
    alice, bob = _inbox(store, "alice"), _inbox(store, "bob")
    [old] = store.append_messages(
        items=[NewMessage(alice, b"Subject: a\r\n\r\nalice secret word\r\n")],
        defer_search_text=True,
    )
    decode = store._decode
    fresh: list[int] = []

    def expunge_and_append() -> None:
        store.set_flags(mailbox_id=alice, uids=[old.uid], flags=["\\Deleted"], mode="add")
        store.expunge(mailbox_id=alice)
        [new] = store.append_messages(
            items=[NewMessage(bob, b"Subject: b\r\n\r\nbob's own words\r\n")],
            defer_search_text=True,
        )
        fresh.append(new.message_id)

    meanwhile = threading.Thread(target=expunge_and_append)

    def expunge_meanwhile(paths: list[Path]) -> object:
        decoded = decode(paths)
        meanwhile.start()
        if store.database.is_sqlite:
            # Done before the fill, so that the new row has taken the old id.
            meanwhile.join(30)
        # On PostgreSQL the indexer's claim holds the row: the expunge waits for the fill
        # (and ids are never reused there).
        return decoded

    store._decode = expunge_meanwhile  # type: ignore[method-assign]
    try:
        store.index_search_text()
    finally:
        store._decode = decode  # type: ignore[method-assign]
    meanwhile.join(30)
    assert not meanwhile.is_alive()
    [bob_message] = _fields(store, fresh)
    assert "alice" not in (bob_message.body_text or "")
    assert store.count_pending_search_text() == 1
    store.index_search_text()
    assert "bob's own words" in (_fields(store, fresh)[0].body_text or "")


def test_waiting_rows_are_found_through_the_partial_index(sqlite_store: MailStore) -> None:
    with sqlite_store.database.engine.connect() as connection:
        dialect = sqlite_store.database.engine.dialect
        for statement in (
            _PENDING.compile(dialect=dialect),
            _COUNT_PENDING.compile(dialect=dialect),
        ):
            plan = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", tuple(statement.params.values())
            ).all()
            assert "ix_messages_search_pending" in str(plan), plan


def test_an_unreadable_message_is_skipped_without_stopping_the_others(
    store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = _inbox(store)
    results = store.append_messages(
        items=[NewMessage(inbox, b"Subject: %d\r\n\r\ntext %d\r\n" % (i, i)) for i in range(10)],
        defer_search_text=True,
    )
    digest = store.fetch_message_data(message_ids=[results[0].message_id], columns={"blob_hash"})[
        results[0].message_id
    ].blob_hash
    assert digest is not None
    path = store.blobs.path_for(digest)
    path.unlink()
    path.mkdir()  # reading it fails with IsADirectoryError
    with caplog.at_level(logging.WARNING, logger="gateway.store"):
        assert store.index_search_text() == 10
    assert "search_index_skipped" in caplog.text
    assert store.count_pending_search_text() == 0
    texts = _fields(store, [r.message_id for r in results[1:]])
    assert [t.body_text for t in texts] == [f"text {i}\n" for i in range(1, 10)]


def test_starting_workers_ahead_survives_a_dead_pool(store: MailStore) -> None:
    inbox = _inbox(store)
    store.warm_ingest_workers(WARM_WORKERS_AT)
    pool = store._pool
    assert pool is not None
    pool.submit(worker_ready).result(timeout=30)
    for process in list(pool._processes.values()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    store.warm_ingest_workers(WARM_WORKERS_AT)  # must not raise
    items = [NewMessage(inbox, b"Subject: %d\r\n\r\nx\r\n" % i) for i in range(20)]
    assert len(store.append_messages(items=items)) == 20


def test_idle_workers_are_stopped_and_started_again_when_needed(store: MailStore) -> None:
    inbox = _inbox(store)
    store.warm_ingest_workers(WARM_WORKERS_AT)
    pool = store._pool
    assert pool is not None
    assert not store.release_idle_workers(3600), "just used: kept"
    processes = list(pool._processes.values())
    assert store.release_idle_workers(0)
    assert store._pool is None
    for process in processes:
        process.join(10)
        assert not process.is_alive()
    items = [NewMessage(inbox, b"Subject: %d\r\n\r\nx\r\n" % i) for i in range(20)]
    assert len(store.append_messages(items=items)) == 20
    assert store._pool is not None, "bulk ingest started them again"


def test_the_background_indexer_stops_workers_left_idle(store: MailStore) -> None:
    inbox = _inbox(store)

    async def scenario() -> None:
        indexer = SearchIndexer(store, quiet_seconds=0.1, poll_seconds=0.2, worker_idle_seconds=0)
        items = [NewMessage(inbox, raw) for raw in generate_corpus(20, seed=9)]
        await asyncio.to_thread(store.append_messages, items=items, defer_search_text=True)
        assert store._pool is not None
        await indexer.start()
        try:
            await _until(lambda: not store.count_pending_search_text() and store._pool is None)
            assert store.count_pending_search_text() == 0
            assert store._pool is None
        finally:
            await indexer.stop()

    asyncio.run(scenario())


@pytest.mark.postgres
def test_postgres_replicas_claim_disjoint_batches(tmp_path: Path) -> None:
    """Two gateway processes on one PostgreSQL index side by side without decoding any
    message twice (FOR UPDATE SKIP LOCKED); two stores on one database stand in for them."""
    with PostgresDatabase() as url:
        first = open_store(make_settings(tmp_path / "a", url))
        second = open_store(make_settings(tmp_path / "b", url, ingest_workers=0))
        try:
            inbox = _inbox(first)
            items = [
                NewMessage(inbox, b"Subject: %d\r\n\r\nword %d\r\n" % (i, i)) for i in range(12)
            ]
            first.append_messages(items=items, defer_search_text=True)
            second.blobs = first.blobs  # one shared blob volume, as replicas would have
            decoded: list[list[Path]] = []
            both_inside = threading.Barrier(2, timeout=10)

            def recording(store: MailStore) -> Callable[[list[Path]], object]:
                decode = store._decode

                def wrapper(paths: list[Path]) -> object:
                    decoded.append(paths)
                    both_inside.wait()  # each holds its claim while the other claims
                    return decode(paths)

                return wrapper

            first._decode = recording(first)  # type: ignore[method-assign]
            second._decode = recording(second)  # type: ignore[method-assign]
            with ThreadPoolExecutor(2) as pool:
                counts = list(pool.map(lambda s: s.index_search_text(limit=6), (first, second)))
            assert counts == [6, 6]
            assert sorted(p for batch in decoded for p in batch) == sorted(
                {p for batch in decoded for p in batch}
            ), "no message decoded twice"
            assert first.count_pending_search_text() == 0
        finally:
            first.close()
            second.close()
