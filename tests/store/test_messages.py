"""Append, flags, copy, move, expunge and the change log on one mailbox."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from gateway.store import (
    MailStore,
    MessageTooLargeError,
    NewMessage,
    NotFoundError,
    OriginKey,
    ingest,
)
from gateway.store.base import WARM_WORKERS_AT
from gateway.store.blobs import PendingBlob

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nbody\r\n"


@pytest.fixture
def inbox(store: MailStore) -> int:
    user = store.create_user(name="alice", password="pw")
    return store.get_mailbox(user_id=user.id, name="INBOX").id


def test_append_assigns_ascending_uids_and_keeps_bytes(store: MailStore, inbox: int) -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    results = [
        store.append_message(
            mailbox_id=inbox, content=MESSAGE + bytes([65 + i]), internal_date=when
        )
        for i in range(5)
    ]
    assert [r.uid for r in results] == [1, 2, 3, 4, 5]
    for i, result in enumerate(results):
        with store.open_message(message_id=result.message_id) as handle:
            assert handle.read() == MESSAGE + bytes([65 + i])
    meta = store.get_messages(message_ids=[results[0].message_id])[results[0].message_id]
    assert meta.internal_date == when
    assert meta.envelope.startswith(b"(")
    assert b"hello" in meta.envelope


def test_append_accepts_streamed_chunks(store: MailStore, inbox: int) -> None:
    chunks = [MESSAGE[i : i + 7] for i in range(0, len(MESSAGE), 7)]
    result = store.append_message(mailbox_id=inbox, content=iter(chunks))
    with store.open_message(message_id=result.message_id) as handle:
        assert handle.read() == MESSAGE


def test_too_large_message_is_refused_and_leaves_nothing(store: MailStore, inbox: int) -> None:
    store.max_message_size = 1000
    with pytest.raises(MessageTooLargeError):
        store.append_message(mailbox_id=inbox, content=MESSAGE + b"x" * 2000)
    assert store.list_entries(mailbox_id=inbox) == []
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_append_to_missing_mailbox_fails_cleanly(store: MailStore, inbox: int) -> None:
    with pytest.raises(NotFoundError):
        store.append_message(mailbox_id=inbox + 999, content=MESSAGE)
    assert store.list_entries(mailbox_id=inbox) == []


def test_flags_replace_add_remove_and_modseq(store: MailStore, inbox: int) -> None:
    for _ in range(3):
        store.append_message(mailbox_id=inbox, content=MESSAGE)
    start = store.mailbox_status(mailbox_id=inbox).highestmodseq
    added = store.set_flags(mailbox_id=inbox, uids=[1, 2], flags=["\\Seen", "$Label1"], mode="add")
    assert added.modseq > start
    assert [e.flag_names for e in added.entries] == [["\\Seen", "$Label1"]] * 2
    removed = store.set_flags(mailbox_id=inbox, uids=[2], flags=["\\seen"], mode="remove")
    assert removed.entries[0].flag_names == ["$Label1"]
    assert removed.modseq > added.modseq
    replaced = store.set_flags(mailbox_id=inbox, uids=None, flags=["\\Flagged", "\\Recent"])
    assert [e.flag_names for e in replaced.entries] == [["\\Flagged"]] * 3
    # A no-op store changes nothing and bumps no MODSEQ (RFC 7162 §3.2).
    again = store.set_flags(mailbox_id=inbox, uids=None, flags=["\\Flagged"])
    assert again.modseq == replaced.modseq
    assert store.mailbox_status(mailbox_id=inbox).highestmodseq == replaced.modseq


def test_unchanged_since_reports_modified(store: MailStore, inbox: int) -> None:
    store.append_message(mailbox_id=inbox, content=MESSAGE)
    store.append_message(mailbox_id=inbox, content=MESSAGE)
    first = store.set_flags(mailbox_id=inbox, uids=[1], flags=["\\Seen"], mode="add")
    result = store.set_flags(
        mailbox_id=inbox,
        uids=[1, 2],
        flags=["\\Flagged"],
        mode="add",
        unchanged_since=first.modseq - 1,
    )
    assert result.modified == [1]
    assert [e.uid for e in result.entries] == [2]


def test_copy_move_expunge_and_no_uid_reuse(store: MailStore, inbox: int) -> None:
    user_id = store.list_users()[0].id
    archive = store.get_mailbox(user_id=user_id, name="Archive").id
    for _ in range(4):
        store.append_message(mailbox_id=inbox, content=MESSAGE, flags=["\\Seen"])
    copied = store.copy_messages(from_mailbox_id=inbox, uids=[1, 2], to_mailbox_id=archive)
    assert copied.uid_pairs == [(1, 1), (2, 2)]
    assert [e.flag_names for e in store.list_entries(mailbox_id=archive)] == [["\\Seen"]] * 2
    moved = store.move_messages(from_mailbox_id=inbox, uids=[3], to_mailbox_id=archive)
    assert moved.uid_pairs == [(3, 3)] and moved.expunged == [3]
    assert [e.uid for e in store.list_entries(mailbox_id=inbox)] == [1, 2, 4]
    store.set_flags(mailbox_id=inbox, uids=[4], flags=["\\Deleted"], mode="add")
    assert store.expunge(mailbox_id=inbox, uids=[1]) == []
    assert store.expunge(mailbox_id=inbox) == [4]
    assert store.append_message(mailbox_id=inbox, content=MESSAGE).uid == 5
    # Copies share content: expunging the original leaves the copy readable.
    store.set_flags(mailbox_id=inbox, uids=None, flags=["\\Deleted"])
    store.expunge(mailbox_id=inbox)
    for entry in store.list_entries(mailbox_id=archive):
        with store.open_message(message_id=entry.message_id) as handle:
            assert handle.read() == MESSAGE
    # Messages no mailbox refers to are gone, their search text with them.
    with store.database.read() as session:
        kept = {e.message_id for e in store.list_entries(mailbox_id=archive)}
        texts = set(session.execute(text("SELECT message_id FROM message_texts")).scalars())
        messages = set(session.execute(text("SELECT id FROM messages")).scalars())
    assert texts == messages == kept


def test_changes_since_reports_every_kind(store: MailStore, inbox: int) -> None:
    base = store.mailbox_status(mailbox_id=inbox).highestmodseq
    store.append_message(mailbox_id=inbox, content=MESSAGE)
    store.set_flags(mailbox_id=inbox, uids=[1], flags=["\\Deleted"], actor="imap")
    store.expunge(mailbox_id=inbox, actor="imap")
    changes = store.changes_since(mailbox_id=inbox, modseq=base)
    assert [(c.kind, c.uid) for c in changes] == [("append", 1), ("flags", 1), ("expunge", 1)]
    assert [c.modseq for c in changes] == sorted({c.modseq for c in changes})
    assert changes[1].actor == "imap"
    assert store.changes_since(mailbox_id=inbox, modseq=changes[-1].modseq) == []


@pytest.fixture
def source_id(store: MailStore, inbox: int) -> int:
    """A POP3 source of the mailbox's owner."""
    return store.add_source(
        user_id=store.list_users()[0].id,
        name="isp",
        protocol="pop3",
        host="h",
        port=995,
        security="tls",
        username="u",
        secret="s",
    ).id


def test_origin_makes_ingest_idempotent(store: MailStore, inbox: int, source_id: int) -> None:
    pop = OriginKey(source_id=source_id, uidl="abc")
    imap = OriginKey(source_id=source_id, remote_folder="INBOX", uidvalidity=7, remote_uid=42)
    first = store.append_messages(
        items=[
            NewMessage(inbox, MESSAGE, origin=pop),
            NewMessage(inbox, MESSAGE, origin=imap),
            NewMessage(inbox, MESSAGE, origin=pop),
        ]
    )
    assert [r.duplicate for r in first] == [False, False, True]
    again = store.append_messages(
        items=[NewMessage(inbox, MESSAGE, origin=pop), NewMessage(inbox, MESSAGE, origin=imap)]
    )
    assert all(r.duplicate for r in again)
    assert len(store.list_entries(mailbox_id=inbox)) == 2
    assert store.has_origin(source_id=source_id, uidl="abc")
    assert store.known_uidls(source_id=source_id) == {"abc"}
    # A message deleted locally is still known, so it is never fetched again.
    store.set_flags(mailbox_id=inbox, uids=None, flags=["\\Deleted"])
    store.expunge(mailbox_id=inbox)
    assert store.append_message(mailbox_id=inbox, content=MESSAGE, origin=pop).duplicate


def test_origin_race_is_retried_and_reported_as_duplicate(
    store: MailStore, inbox: int, source_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer stores the same origin between our check and our insert: the unique
    constraint fires inside the bare-cursor insert, and the retry reports a duplicate."""
    origin = OriginKey(source_id=source_id, uidl="raced")
    stored = store.append_message(mailbox_id=inbox, content=MESSAGE, origin=origin)
    real = ingest.find_origins
    calls = {"n": 0}

    def miss_once(session: object, origins: object) -> dict[tuple[object, ...], int]:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(session, origins)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "find_origins", miss_once)
    again = store.append_message(mailbox_id=inbox, content=MESSAGE + b"x", origin=origin)
    assert calls["n"] == 2
    assert again.duplicate and again.message_id == stored.message_id
    assert len(store.list_entries(mailbox_id=inbox)) == 1


def test_bytearray_and_memoryview_content_are_stored(store: MailStore, inbox: int) -> None:
    for content in (bytearray(MESSAGE + b"1"), memoryview(MESSAGE + b"2")):
        result = store.append_message(mailbox_id=inbox, content=content)
        with store.open_message(message_id=result.message_id) as handle:
            assert handle.read() == bytes(content)


def test_change_listener_hears_commits(store: MailStore, inbox: int) -> None:
    heard: list[tuple[int, int, int]] = []
    store.add_change_listener(
        lambda user, mailbox, modseq, _actor: heard.append((user, mailbox, modseq))
    )
    store.append_message(mailbox_id=inbox, content=MESSAGE)
    store.set_flags(mailbox_id=inbox, uids=[1], flags=["\\Seen"])
    assert [h[1] for h in heard] == [inbox, inbox]
    assert heard[0][2] < heard[1][2]


def test_garbage_collection_keeps_referenced_blobs(store: MailStore, inbox: int) -> None:
    keep = store.append_message(mailbox_id=inbox, content=MESSAGE + b"keep")
    store.append_message(mailbox_id=inbox, content=MESSAGE + b"drop")
    store.set_flags(mailbox_id=inbox, uids=[2], flags=["\\Deleted"])
    store.expunge(mailbox_id=inbox)
    assert store.collect_garbage(grace_seconds=3600) == 0
    assert store.collect_garbage(grace_seconds=0) == 1
    with store.open_message(message_id=keep.message_id) as handle:
        assert handle.read() == MESSAGE + b"keep"


def test_pipelined_batches_commit_in_order(store: MailStore, inbox: int) -> None:
    batches = [
        [NewMessage(inbox, MESSAGE + f"{b}-{i}".encode()) for i in range(size)]
        for b, size in enumerate([10, 1, 25, 9])
    ]
    results = list(store.append_message_batches(batches=iter(batches)))
    assert [len(r) for r in results] == [10, 1, 25, 9]
    uids = [r.uid for batch in results for r in batch]
    assert uids == list(range(1, 46))
    for batch, batch_results in zip(batches, results, strict=True):
        for item, result in zip(batch, batch_results, strict=True):
            with store.open_message(message_id=result.message_id) as handle:
                assert handle.read() == item.content


def test_ingest_survives_dead_worker_processes(store: MailStore, inbox: int) -> None:
    items = [NewMessage(inbox, MESSAGE + bytes([65 + i])) for i in range(12)]
    store.append_messages(items=items)
    pool = store._analysis_pool()
    assert pool is not None, "the fixture's store analyses bulk ingest in worker processes"
    for process in list(pool._processes.values()):
        # Once one worker dies the pool may terminate the others itself.
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    results = store.append_messages(items=items)
    assert [r.uid for r in results] == list(range(13, 25))
    # ...and the next batch gets a fresh pool.
    assert [r.uid for r in store.append_messages(items=items)] == list(range(25, 37))
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_workers_start_ahead_only_for_many_messages(store: MailStore) -> None:
    store.shutdown_workers()
    store.warm_ingest_workers(WARM_WORKERS_AT - 1)
    assert store._pool is None, "a few messages are analysed inline: no workers for them"
    store.warm_ingest_workers(WARM_WORKERS_AT)
    pool = store._pool
    assert pool is not None
    deadline = time.monotonic() + 30
    while len(pool._processes) < store._ingest_workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pool._processes) == store._ingest_workers
    assert all(process.is_alive() for process in pool._processes.values())


def test_append_waits_for_its_blob_to_be_durable(
    store: MailStore, inbox: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is flushed in a helper thread while the message is analysed and its rows are
    written; no row may be committed before the flush is done, and a failed flush stores
    nothing."""
    committed: list[str] = []
    real_commit = store.blobs.commit

    def slow_commit(
        blobs: Iterable[PendingBlob], *, syncing: threading.Event | None = None
    ) -> None:
        pending = list(blobs)
        if pending:
            time.sleep(0.2)  # longer than the analysis and the inserts of a small message
            assert store.list_entries(mailbox_id=inbox) == [], "a row committed before its blob"
        real_commit(pending, syncing=syncing)
        committed.extend(blob.digest or "" for blob in pending)

    monkeypatch.setattr(store.blobs, "commit", slow_commit)
    result = store.append_message(mailbox_id=inbox, content=MESSAGE)
    (entry,) = store.list_entries(mailbox_id=inbox)
    assert entry.uid == result.uid
    with store.open_message(message_id=entry.message_id) as handle:
        assert handle.read() == MESSAGE
    assert committed and committed[-1] and store.blobs.path_for(committed[-1]).exists()

    def failing_commit(
        blobs: Iterable[PendingBlob], *, syncing: threading.Event | None = None
    ) -> None:
        if list(blobs):  # the helper thread's flush of the new message's file
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.blobs, "commit", failing_commit)
    other = MESSAGE.replace(b"Subject:", b"X-Other: 1\r\nSubject:")
    with pytest.raises(OSError, match="No space left"):
        store.append_message(mailbox_id=inbox, content=other)
    assert [e.uid for e in store.list_entries(mailbox_id=inbox)] == [entry.uid]
    assert list(store.blobs.tmp_root.iterdir()) == []


def test_a_message_whose_analysis_fails_leaves_no_row_and_no_temp_file(
    store: MailStore, inbox: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_finish(self: object) -> object:
        raise RuntimeError("analysis bug")

    monkeypatch.setattr("gateway.mime.MessageAnalyzer.finish", broken_finish)
    with pytest.raises(RuntimeError, match="analysis bug"):
        store.append_message(mailbox_id=inbox, content=MESSAGE)
    assert store.list_entries(mailbox_id=inbox) == []
    assert list(store.blobs.tmp_root.iterdir()) == []
