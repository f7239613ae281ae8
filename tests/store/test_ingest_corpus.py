"""Ingest never rejects or alters mail: malformed and huge messages round-trip byte for byte."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from gateway.mime import parts_from_json
from gateway.store import MailStore, NewMessage
from tests.support.corpus import generate_corpus, large_attachment, malformed_corpus


@pytest.fixture
def inbox(store: MailStore) -> int:
    user = store.create_user(name="alice", password="pw")
    return store.get_mailbox(user_id=user.id, name="INBOX").id


def test_malformed_corpus_round_trips_byte_for_byte(store: MailStore, inbox: int) -> None:
    cases = malformed_corpus()
    # Half one by one (inline analysis), half as one batch (worker processes).
    single = [store.append_message(mailbox_id=inbox, content=raw) for _, raw in cases]
    batch = store.append_messages(items=[NewMessage(inbox, raw) for _, raw in cases])
    meta = store.get_messages(message_ids=[r.message_id for r in single + batch])
    for (name, raw), result in zip(cases + cases, single + batch, strict=True):
        with store.open_message(message_id=result.message_id) as handle:
            assert handle.read() == raw, name
        info = meta[result.message_id]
        assert info.size == len(raw), name
        assert info.envelope.startswith(b"(") and info.bodystructure.startswith(b"("), name
        assert parts_from_json(info.parts_json)[0].end == len(raw), name


def test_realistic_corpus_metadata_matches_between_inline_and_workers(
    store: MailStore, inbox: int
) -> None:
    messages = list(generate_corpus(60, seed=5, max_size=200_000))
    inline = [store.append_message(mailbox_id=inbox, content=raw) for raw in messages]
    pooled = store.append_messages(items=[NewMessage(inbox, raw) for raw in messages])
    meta = store.get_messages(message_ids=[r.message_id for r in inline + pooled])
    for one, two in zip(inline, pooled, strict=True):
        a, b = meta[one.message_id], meta[two.message_id]
        assert (a.envelope, a.bodystructure, a.body, a.parts_json, a.blob_hash) == (
            b.envelope,
            b.bodystructure,
            b.body,
            b.parts_json,
            b.blob_hash,
        )


def test_25_mb_message_streams_with_bounded_memory(store: MailStore, inbox: int) -> None:
    raw = large_attachment(25 * 1024 * 1024)

    def chunks() -> Iterator[bytes]:
        view = memoryview(raw)
        for start in range(0, len(view), 64 * 1024):
            yield bytes(view[start : start + 64 * 1024])

    tracemalloc.start()
    try:
        result = store.append_message(mailbox_id=inbox, content=chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while ingesting 25 MB"
    with store.open_message(message_id=result.message_id) as handle:
        assert handle.read() == raw
