"""Search text deferred at ingest and filled in later, by the store and by `gateway serve`'s
background indexer (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gateway.search_indexer import SearchIndexer
from gateway.store import MailStore, NewMessage
from gateway.store.search_data import SearchFields
from tests.support.corpus import generate_corpus

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
    with caplog.at_level(logging.ERROR, logger="gateway.store"):
        assert store.index_search_text() == 1
    assert "search_index_blob_missing" in caplog.text
    assert store.index_search_text() == 0


def test_the_background_indexer_catches_up_after_a_quiet_moment(store: MailStore) -> None:
    inbox = _inbox(store)

    async def scenario() -> None:
        indexer = SearchIndexer(store, quiet_seconds=0.3, poll_seconds=30)
        await indexer.start()
        try:
            items = [NewMessage(inbox, raw) for raw in generate_corpus(30, seed=5)]
            await asyncio.to_thread(store.append_messages, items=items, defer_search_text=True)
            pending = store.count_pending_search_text()
            assert pending > 0
            deadline = time.monotonic() + 30
            while store.count_pending_search_text() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert store.count_pending_search_text() == 0
            assert indexer.indexed == pending
        finally:
            await indexer.stop()

    asyncio.run(scenario())
