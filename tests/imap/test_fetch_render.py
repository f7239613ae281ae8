"""render_fetch against a real store (SQLite and PostgreSQL), and FETCH item names."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import BinaryIO

import pytest

from gateway.imap.fetch_render import LOAD_BATCH, render_fetch
from gateway.imap.protocol.fetch_items import FetchAttribute, Section
from gateway.store import MailStore, NewMessage
from gateway.store.fetch_data import FetchColumn, FetchData
from gateway.store.views import EntryInfo
from tests.support.corpus import crlf, generate_corpus, large_attachment
from tests.support.imap_raw import parse_fetch

NESTED = (
    b"From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
    b"--o--\r\n"
)


class RecordingSource:
    """Wraps the store and records every bulk load."""

    def __init__(self, store: MailStore) -> None:
        self.store = store
        self.loads: list[tuple[int, frozenset[str]]] = []

    def fetch_message_data(
        self, *, message_ids: Collection[int], columns: Collection[FetchColumn]
    ) -> dict[int, FetchData]:
        self.loads.append((len(message_ids), frozenset(columns)))
        return self.store.fetch_message_data(message_ids=message_ids, columns=columns)

    def open_blob(self, *, blob_hash: str) -> BinaryIO:
        return self.store.open_blob(blob_hash=blob_hash)


class NoStore:
    """A source that must not be touched: UID/FLAGS/MODSEQ come from the entries alone."""

    def fetch_message_data(
        self, *, message_ids: Collection[int], columns: Collection[FetchColumn]
    ) -> dict[int, FetchData]:
        raise AssertionError("FETCH UID FLAGS MODSEQ must not load message data")

    def open_blob(self, *, blob_hash: str) -> BinaryIO:
        raise AssertionError("no blob either")


def item(name: str) -> FetchAttribute:
    return FetchAttribute(name)  # type: ignore[arg-type]


WHOLE = Section()


def body(
    section: Section = WHOLE, partial: tuple[int, int] | None = None, *, peek: bool = True
) -> FetchAttribute:
    return FetchAttribute("BODY[]", section=section, partial=partial, peek=peek)


def render(
    source: object,
    targets: list[tuple[int, EntryInfo]],
    *attributes: FetchAttribute,
    **options: object,
) -> bytes:
    return b"".join(
        render_fetch(source, targets=targets, attributes=attributes, **options)  # type: ignore[arg-type]
    )


def _mailbox(store: MailStore, name: str = "alice") -> int:
    user = store.create_user(name=name, password="pw")
    return store.get_mailbox(user_id=user.id, name="INBOX").id


# --- response names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (item("UID"), b"UID"),
        (item("RFC822.SIZE"), b"RFC822.SIZE"),
        (item("BODY"), b"BODY"),
        (FetchAttribute("RFC822", peek=True), b"RFC822"),
        (item("RFC822.HEADER"), b"RFC822.HEADER"),
        (item("MODSEQ"), b"MODSEQ"),
        (body(), b"BODY[]"),
        (body(peek=False), b"BODY[]"),
        (body(Section(part=(1, 2), text="MIME")), b"BODY[1.2.MIME]"),
        (body(Section(part=(3,))), b"BODY[3]"),
        (body(Section(text="TEXT"), (10, 20)), b"BODY[TEXT]<10>"),
        (body(Section(), (0, 1)), b"BODY[]<0>"),
        (
            body(Section(text="HEADER.FIELDS", header_fields=("From", "to"))),
            b"BODY[HEADER.FIELDS (FROM TO)]",
        ),
        (
            body(Section(part=(2,), text="HEADER.FIELDS.NOT", header_fields=("x y", 'a"b'))),
            b'BODY[2.HEADER.FIELDS.NOT ("X Y" "A\\"B")]',
        ),
    ],
)
def test_response_names(attribute: FetchAttribute, expected: bytes) -> None:
    assert attribute.response_name() == expected


# --- entry-only items ----------------------------------------------------------------------------


def test_uid_flags_modseq_need_no_store() -> None:
    entries = [
        EntryInfo(uid=10, message_id=1, flags=0, keywords=frozenset(), modseq=5),
        EntryInfo(
            uid=11, message_id=2, flags=1 | 4, keywords=frozenset({"$Junk", "Work"}), modseq=7
        ),
        EntryInfo(
            uid=12, message_id=3, flags=1 | 4, keywords=frozenset({"Work", "$Junk"}), modseq=8
        ),
    ]
    out = render(
        NoStore(),
        list(enumerate(entries, 1)),
        item("UID"),
        item("FLAGS"),
        item("MODSEQ"),
        recent_uids={10, 12},
    )
    assert out == (
        b"* 1 FETCH (UID 10 FLAGS (\\Recent) MODSEQ (5))\r\n"
        b"* 2 FETCH (UID 11 FLAGS (\\Flagged \\Seen $Junk Work) MODSEQ (7))\r\n"
        b"* 3 FETCH (UID 12 FLAGS (\\Flagged \\Seen \\Recent $Junk Work) MODSEQ (8))\r\n"
    )


def test_no_targets_no_output() -> None:
    assert list(render_fetch(NoStore(), targets=[], attributes=[item("UID")])) == []  # type: ignore[arg-type]


# --- precomputed data ----------------------------------------------------------------------------


def test_metadata_items_equal_the_stored_values(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    when = datetime(2024, 3, 7, 23, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    result = store.append_message(mailbox_id=mailbox_id, content=NESTED, internal_date=when)
    stored = store.get_messages(message_ids=[result.message_id])[result.message_id]
    entries = store.list_entries(mailbox_id=mailbox_id)
    out = render(
        store,
        [(1, entries[0])],
        item("UID"),
        item("INTERNALDATE"),
        item("RFC822.SIZE"),
        item("ENVELOPE"),
        item("BODYSTRUCTURE"),
        item("BODY"),
    )
    number, items = parse_fetch(out)
    assert number == 1 and out.endswith(b")\r\n")
    assert items["UID"] == b"%d" % result.uid
    assert items["INTERNALDATE"] == b'"08-Mar-2024 04:04:05 +0000"'
    assert items["RFC822.SIZE"] == b"%d" % len(NESTED)
    assert items["ENVELOPE"] == stored.envelope
    assert items["BODYSTRUCTURE"] == stored.bodystructure
    assert items["BODY"] == stored.body


def test_only_needed_columns_are_loaded(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    store.append_message(mailbox_id=mailbox_id, content=NESTED)
    targets = list(enumerate(store.list_entries(mailbox_id=mailbox_id), 1))
    source = RecordingSource(store)
    render(source, targets, item("UID"), item("ENVELOPE"))
    render(source, targets, item("RFC822.SIZE"), item("INTERNALDATE"))
    render(source, targets, item("FLAGS"), body(Section(part=(1,))))
    assert [columns for _, columns in source.loads] == [
        {"envelope"},
        {"size", "internal_date"},
        {"blob_hash", "size", "parts_json"},
    ]


def test_data_is_loaded_in_bulk(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    count = 2 * LOAD_BATCH + 37
    items = [
        NewMessage(mailbox_id, b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n)) for n in range(count)
    ]
    store.append_messages(items=items)
    entries = store.list_entries(mailbox_id=mailbox_id)
    source = RecordingSource(store)
    out = render(source, list(enumerate(entries, 1)), item("UID"), item("RFC822.SIZE"), body())
    assert [size for size, _ in source.loads] == [LOAD_BATCH, LOAD_BATCH, 37]
    responses = re.findall(rb"\* (\d+) FETCH \(UID (\d+) RFC822.SIZE (\d+) BODY\[\] \{(\d+)\}", out)
    assert len(responses) == count
    assert [int(r[0]) for r in responses] == list(range(1, count + 1))
    assert [int(r[1]) for r in responses] == [entry.uid for entry in entries]
    assert all(r[2] == r[3] for r in responses)


# --- body sections -------------------------------------------------------------------------------


def test_body_sections_are_literals(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    store.append_message(mailbox_id=mailbox_id, content=NESTED)
    targets = [(7, store.list_entries(mailbox_id=mailbox_id)[0])]
    out = render(
        store,
        targets,
        body(Section(part=(1,))),
        body(Section(part=(2,), text="HEADER"), peek=False),
        body(Section(text="HEADER.FIELDS", header_fields=("subject",))),
        body(Section(part=(9,))),
        body(Section(), (3, 6)),
        body(Section(), (500, 6)),
    )
    assert out == (
        b"* 7 FETCH (BODY[1] {5}\r\nhello BODY[2.HEADER] {18}\r\nSubject: inner\r\n\r\n"
        b"BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: s\r\n\r\n BODY[9] {0}\r\n"
        b" BODY[]<3> {6}\r\nm: a@b BODY[]<500> {0}\r\n)\r\n"
    ).replace(b"\r\n\r\nBODY[HEADER", b"\r\n\r\n BODY[HEADER")


def test_rfc822_items(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    store.append_message(mailbox_id=mailbox_id, content=NESTED)
    targets = [(1, store.list_entries(mailbox_id=mailbox_id)[0])]
    header_end = NESTED.index(b"\r\n\r\n") + 4
    _, items = parse_fetch(
        render(store, targets, item("RFC822"), item("RFC822.HEADER"), item("RFC822.TEXT"))
    )
    assert items == {
        "RFC822": b"{%d}\r\n" % len(NESTED) + NESTED,
        "RFC822.HEADER": b"{%d}\r\n" % header_end + NESTED[:header_end],
        "RFC822.TEXT": b"{%d}\r\n" % (len(NESTED) - header_end) + NESTED[header_end:],
    }


def test_corpus_bodies_round_trip(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    messages = list(generate_corpus(25, seed=4, max_size=40_000))
    messages.append(b"From: a@example.org\nSubject: bare LF\n\nline one\nline two\n")
    store.append_messages(items=[NewMessage(mailbox_id, raw) for raw in messages])
    targets = list(enumerate(store.list_entries(mailbox_id=mailbox_id), 1))
    out = render(store, targets, item("UID"), body())
    for number, raw in enumerate(messages, 1):
        # stored bytes are served exactly, bare LF included; NUL is not allowed in a literal
        served = raw.replace(b"\0", b"\x80")
        prefix = b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (number, number, len(raw))
        assert prefix + served + b")\r\n" in out


# --- chunking ------------------------------------------------------------------------------------


def test_chunks_hold_whole_responses_of_about_batch_bytes(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    big = large_attachment(300_000)
    contents = [b"Subject: %d\r\n\r\n%s\r\n" % (n, b"x" * 2000) for n in range(60)]
    contents.insert(30, big)
    store.append_messages(items=[NewMessage(mailbox_id, raw) for raw in contents])
    targets = list(enumerate(store.list_entries(mailbox_id=mailbox_id), 1))
    whole = render(store, targets, item("UID"), body())
    chunks = list(
        render_fetch(store, targets=targets, attributes=[item("UID"), body()], batch_bytes=10_000)
    )
    assert b"".join(chunks) == whole
    for chunk in chunks:
        assert chunk.startswith(b"* ") and chunk.endswith(b")\r\n")
        if big not in chunk:
            assert len(chunk) < 10_000 + 2100
    # the big response is a chunk of its own
    assert next(chunk for chunk in chunks if big in chunk).count(b" FETCH (") == 1


# --- messages gone meanwhile ---------------------------------------------------------------


def test_expunged_message_is_skipped_and_reported(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    for raw in (b"Subject: 1\r\n\r\none\r\n", b"Subject: 2\r\n\r\ntwo\r\n"):
        store.append_message(mailbox_id=mailbox_id, content=raw)
    entries = store.list_entries(mailbox_id=mailbox_id)
    store.set_flags(mailbox_id=mailbox_id, uids=[entries[0].uid], flags=["\\Deleted"])
    store.expunge(mailbox_id=mailbox_id)
    gone: list[int] = []
    out = render(
        store,
        list(enumerate(entries, 1)),
        item("UID"),
        item("RFC822.SIZE"),
        on_expunged=gone.append,
    )
    assert gone == [entries[0].uid]
    assert out == b"* 2 FETCH (UID %d RFC822.SIZE 19)\r\n" % entries[1].uid


def test_fetch_message_data_rejects_unknown_columns(store: MailStore) -> None:
    with pytest.raises(ValueError, match="not a FETCH column"):
        store.fetch_message_data(message_ids=[1], columns={"body_text"})  # type: ignore[arg-type]


def test_fetch_message_data_leaves_out_missing_ids(store: MailStore) -> None:
    mailbox_id = _mailbox(store)
    result = store.append_message(mailbox_id=mailbox_id, content=NESTED)
    loaded = store.fetch_message_data(
        message_ids=[result.message_id, 999_999], columns={"size", "internal_date"}
    )
    assert list(loaded) == [result.message_id]
    data = loaded[result.message_id]
    assert data.size == len(NESTED) and data.internal_date is not None
    assert data.internal_date.tzinfo is not None and data.internal_date.utcoffset() == timedelta(0)
    assert datetime.now(UTC) - data.internal_date < timedelta(minutes=5)


def test_uid_range_load_equals_id_list_load(store: MailStore) -> None:
    user = store.create_user(name="range", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    for number in range(12):
        store.append_message(
            mailbox_id=inbox, content=crlf(f"Subject: m{number}\n\nbody {number}\n")
        )
    store.set_flags(mailbox_id=inbox, uids=[4, 7], flags=["\\Deleted"], mode="add")
    store.expunge(mailbox_id=inbox, uids=None)
    entries = store.list_entries(mailbox_id=inbox)
    assert [entry.uid for entry in entries[2:5]] == [3, 5, 6]
    targets = list(enumerate(entries[2:10], 3))
    attributes = [
        FetchAttribute("UID"),
        FetchAttribute("ENVELOPE"),
        FetchAttribute("RFC822.SIZE"),
        FetchAttribute("INTERNALDATE"),
    ]
    by_range = b"".join(
        render_fetch(
            store,
            targets=targets,
            attributes=attributes,
            uid_ranges=partial(store.fetch_message_rows_by_uid, mailbox_id=inbox),
        )
    )
    by_ids = b"".join(render_fetch(store, targets=targets, attributes=attributes))
    assert by_range == by_ids and by_range.count(b" FETCH (") == 8


def test_range_load_never_pairs_a_response_with_the_wrong_message(store: MailStore) -> None:
    """A UID range holds messages the batch lacks and lacks ones it holds (expunged by another
    session), in equal numbers: rows must still go to their own messages."""
    user = store.create_user(name="pairs", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    for number in range(1, 7):
        store.append_message(
            mailbox_id=inbox, content=crlf(f"Subject: m{number}\n\nbody {number}\n")
        )
    entries = store.list_entries(mailbox_id=inbox)
    chosen = [entries[0], entries[2], entries[4]]  # UIDs 1, 3, 5; 2 and 4 are not asked for
    # 3 and 4 expunged: the range 1..5 now holds 1, 2, 5, as many rows as the batch asks for
    store.set_flags(mailbox_id=inbox, uids=[3, 4], flags=["\\Deleted"], mode="add")
    store.expunge(mailbox_id=inbox, uids=None)  # the session has not heard yet
    targets = [(1, chosen[0]), (3, chosen[1]), (5, chosen[2])]
    for attributes in (
        [FetchAttribute("BODYSTRUCTURE")],
        [FetchAttribute("UID"), FetchAttribute("ENVELOPE")],
        [FetchAttribute("UID"), FetchAttribute("ENVELOPE"), FetchAttribute("INTERNALDATE")],
    ):
        gone: list[int] = []
        out = b"".join(
            render_fetch(
                store,
                targets=targets,
                attributes=attributes,
                uid_ranges=partial(store.fetch_message_rows_by_uid, mailbox_id=inbox),
                on_expunged=gone.append,
            )
        )
        by_ids = b"".join(render_fetch(store, targets=targets, attributes=attributes))
        assert gone == [3]
        assert out == by_ids and out.count(b" FETCH (") == 2
        assert out.startswith(b"* 1 FETCH (") and b"\r\n* 5 FETCH (" in out
        if attributes[-1].name == "ENVELOPE":
            assert b'"m1"' in out and b'"m5"' in out and b'"m2"' not in out
