"""SEARCH evaluation (gateway.imap.search) on a real store, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from email.header import Header

import pytest

from gateway.imap.protocol.search_keys import (
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)
from gateway.imap.protocol.sequence import SequenceSet
from gateway.imap.search import search_messages, uses_modseq
from gateway.imap.text_match import Needle, fold_text
from gateway.store import MailStore, NewMessage, open_store
from gateway.store.views import EntryInfo
from tests.support.fixtures_store import PostgresDatabase, make_settings

JST = timezone(timedelta(hours=9))
EST = timezone(timedelta(hours=-5))


def _message(headers: list[str], body: str | bytes = "hello body\n") -> bytes:
    raw_body = body.encode() if isinstance(body, str) else body
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + raw_body.replace(b"\n", b"\r\n")


def _long_body_message() -> bytes:
    """A text body far past the 128 KiB the store keeps, with the needle at the very end."""
    text = ("filler line of the long message body\n" * 6000) + "needle-at-the-end Köln\n"
    encoded = base64.encodebytes(text.encode()).decode()
    return _message(
        [
            "From: long@example.org",
            "Subject: long one",
            "Date: Wed, 3 Jan 2024 12:00:00 +0000",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=XX",
        ],
        "--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + encoded
        + "--XX\nContent-Type: application/octet-stream\n\nbinary-only-word\n--XX--\n",
    )


# (headers, body, flags, internal date); sequence number = position + 1, UIDs 1..n
MESSAGES: list[tuple[list[str], str | bytes, tuple[str, ...], datetime]] = [
    (
        [
            "From: Alice Example <alice@example.org>",
            "To: bob@example.com",
            "Subject: Quarterly report",
            "Date: Mon, 1 Jan 2024 23:30:00 -0500",
            "X-Priority: 1",
        ],
        "The quarterly numbers are attached.\n",
        ("\\Seen",),
        datetime(2024, 1, 1, 23, 30, tzinfo=EST),  # 2024-01-02 04:30 UTC
    ),
    (
        [
            "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>",
            "To: Alice Example <alice@example.org>",
            "Cc: carol@jones.example",
            "Subject: " + Header("Grüße aus Köln", "utf-8").encode(),
            "Date: Tue, 2 Jan 2024 01:30:00 +0900",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ],
        "Sch=C3=B6ne Gr=C3=BC=C3=9Fe, die Stra=C3=9Fe ist =C3=A9t=C3=A9.\n",
        ("\\Flagged", "$Work"),
        datetime(2024, 1, 2, 1, 30, tzinfo=JST),  # 2024-01-01 16:30 UTC
    ),
    (
        [
            "From: taro.yamada@example.jp",
            "To: alice@example.org",
            "Bcc: secret@example.net",
            "Subject: " + Header("日本語の件名です", "iso-2022-jp").encode(),
            "Date: Wed, 3 Jan 2024 09:00:00 +0900",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=ISO-2022-JP",
        ],
        "会議は明日の午後三時からです。\n".encode("iso-2022-jp"),
        ("\\Answered", "\\Seen", "$Junk"),
        datetime(2024, 1, 3, 0, 0, tzinfo=UTC),
    ),
    (
        ["From: nodate@example.org", "Subject: no   date  here", "X-Empty:"],
        "Message without a Date field.\n",
        ("\\Deleted",),
        datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
    ),
    (
        ["From: bad@example.org", "Subject: bad date", "Date: not a date at all"],
        "ΟΔΟΣ means road.\n",
        ("\\Draft", "\\Seen"),
        datetime(2024, 2, 1, 12, 0, tzinfo=UTC),
    ),
    ([], _long_body_message(), (), datetime(2024, 3, 1, 12, 0, tzinfo=UTC)),
]


@dataclass
class Mailbox:
    store: MailStore
    mailbox_id: int
    entries: list[EntryInfo]

    def search(self, criteria: SearchKey, **options: object) -> list[int]:
        """Matching sequence numbers (1-based), like an untagged SEARCH response."""
        indexes = search_messages(
            self.store,
            criteria=criteria,
            entries=self.entries,
            **options,  # type: ignore[arg-type]
        )
        assert indexes == sorted(set(indexes))
        return [index + 1 for index in indexes]


def _fill(store: MailStore, *, defer_search_text: bool = False) -> Mailbox:
    user = store.create_user(name="searcher", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    for headers, body, flags, internal_date in MESSAGES:
        raw = body if not headers else _message(headers, body)
        assert isinstance(raw, bytes)
        item = NewMessage(inbox.id, raw, flags, internal_date)
        store.append_messages(items=[item], defer_search_text=defer_search_text)
    return Mailbox(store, inbox.id, store.list_entries(mailbox_id=inbox.id))


@pytest.fixture
def mailbox(store: MailStore) -> Mailbox:
    """A fresh filled mailbox, for tests that change it."""
    return _fill(store)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mailbox]:
    """One filled mailbox per backend for the read-only tests of this module."""
    with ExitStack() as stack:
        url = stack.enter_context(PostgresDatabase()) if request.param == "postgres" else None
        store = open_store(make_settings(tmp_path_factory.mktemp("search") / "data", url))
        stack.callback(store.close)
        yield _fill(store)


@pytest.fixture
def deferred(store: MailStore) -> Mailbox:
    """The same mailbox stored as fetchers store mail: body text not yet indexed."""
    return _fill(store, defer_search_text=True)


def _seq(text: str, *, uid: bool = False) -> SearchSequence:
    ranges: list[tuple[int | None, int | None]] = []
    for item in text.split(","):
        first, _, last = item.partition(":")
        low = None if first == "*" else int(first)
        high = low if not last else (None if last == "*" else int(last))
        ranges.append((low, high))
    return SearchSequence(SequenceSet(tuple(ranges)), uid=uid)


def test_the_long_message_is_stored_truncated(shared: Mailbox) -> None:
    fields = shared.store.search_message_fields(
        message_ids=[shared.entries[5].message_id], fields=["body_text_truncated", "body_text"]
    )
    row = fields[shared.entries[5].message_id]
    assert row.body_text_truncated is True
    assert row.body_text is not None and "needle-at-the-end" not in row.body_text


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (SearchAll(), [1, 2, 3, 4, 5, 6]),
        (SearchAnd(()), [1, 2, 3, 4, 5, 6]),
        (SearchFlag("\\Seen"), [1, 3, 5]),
        (SearchFlag("\\Seen", present=False), [2, 4, 6]),
        (SearchFlag("\\SEEN"), [1, 3, 5]),
        (SearchFlag("\\Answered"), [3]),
        (SearchFlag("\\Flagged"), [2]),
        (SearchFlag("\\Deleted"), [4]),
        (SearchFlag("\\Draft"), [5]),
        (SearchFlag("\\Draft", present=False), [1, 2, 3, 4, 6]),
        (SearchFlag("$Work"), [2]),
        (SearchFlag("$work"), [2]),
        (SearchFlag("$Junk", present=False), [1, 2, 4, 5, 6]),
        (SearchFlag("$Never"), []),
        (SearchFlag("$Never", present=False), [1, 2, 3, 4, 5, 6]),
        (SearchFlag("\\Unknown"), []),
        (SearchNot(SearchFlag("\\Unknown")), [1, 2, 3, 4, 5, 6]),
    ],
)
def test_flag_keys(shared: Mailbox, criteria: SearchKey, expected: list[int]) -> None:
    assert shared.search(criteria) == expected


def test_recent_new_old(shared: Mailbox) -> None:
    recent = frozenset(e.uid for e in shared.entries[2:5])  # messages 3, 4, 5
    new = SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", present=False)))
    assert shared.search(SearchFlag("\\Recent"), recent_uids=recent) == [3, 4, 5]
    assert shared.search(new, recent_uids=recent) == [4]
    assert shared.search(SearchFlag("\\Recent", present=False), recent_uids=recent) == [1, 2, 6]
    assert shared.search(SearchFlag("\\Recent")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", [1]),
        ("*", [6]),
        ("2:4", [2, 3, 4]),
        ("4:2", [2, 3, 4]),
        ("5:*", [5, 6]),
        ("*:5", [5, 6]),
        ("6:*", [6]),
        ("1,3,5:*", [1, 3, 5, 6]),
        ("1:2,2:3", [1, 2, 3]),
        ("7:*", []),  # Dovecot: "*" in a range has no upper bound, so 7:* is empty
        ("9", []),
    ],
)
def test_sequence_sets(shared: Mailbox, text: str, expected: list[int]) -> None:
    assert shared.search(_seq(text)) == expected


def test_uid_sets_bisect_sparse_uids(store: MailStore) -> None:
    """UIDs far apart (up to 2^32 - 1): sets are bisected, never expanded."""
    user = store.create_user(name="sparse", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    store.append_message(mailbox_id=inbox.id, content=_message(["Subject: x"]))
    message_id = store.list_entries(mailbox_id=inbox.id)[0].message_id
    uids = [3, 10, 4_000_000_000, 4_294_967_295]
    entries = [EntryInfo(uid, message_id, 0, frozenset(), 1) for uid in uids]

    def search(text: str) -> list[int]:
        return search_messages(store, criteria=_seq(text, uid=True), entries=entries)

    assert search("1:4294967295") == [0, 1, 2, 3]
    assert search("*") == [3]
    assert search("11:*") == [2, 3]
    assert search("5:9") == []
    assert search("4:10,4000000000") == [1, 2]
    assert search("3,4294967295") == [0, 3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:*", [1, 2, 3, 4, 5, 6]),
        ("*", [6]),
        ("2,4", [2, 4]),
        ("100:*", [6]),  # RFC 3501 §6.4.8: "*" is the largest UID, so 100:* is 6:100
        ("*:100", [6]),
        ("7:99", []),
        ("3:1", [1, 2, 3]),
    ],
)
def test_uid_sets(shared: Mailbox, text: str, expected: list[int]) -> None:
    assert shared.search(_seq(text, uid=True)) == expected


def test_empty_mailbox(store: MailStore) -> None:
    for key in (_seq("*"), _seq("1:*", uid=True), SearchText("x"), SearchAll()):
        assert search_messages(store, criteria=key, entries=[]) == []


def test_modseq(mailbox: Mailbox) -> None:
    store = mailbox.store
    update = store.set_flags(
        mailbox_id=mailbox.mailbox_id, uids=[mailbox.entries[1].uid], flags=["\\Seen"], mode="add"
    )
    entries = store.list_entries(mailbox_id=mailbox.mailbox_id)
    found = search_messages(store, criteria=SearchModSeq(update.modseq), entries=entries)
    assert found == [1]
    everything = search_messages(store, criteria=SearchModSeq(1), entries=entries)
    assert everything == [0, 1, 2, 3, 4, 5]
    assert uses_modseq(SearchAnd((SearchAll(), SearchNot(SearchModSeq(3)))))
    assert not uses_modseq(SearchOr(SearchAll(), SearchText("x")))


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (SearchSize("larger", 0), [1, 2, 3, 4, 5, 6]),
        (SearchSize("larger", 100_000), [6]),
        (SearchSize("smaller", 100_000), [1, 2, 3, 4, 5]),
        (SearchSize("smaller", 1), []),
    ],
)
def test_size(shared: Mailbox, criteria: SearchKey, expected: list[int]) -> None:
    assert shared.search(criteria) == expected


def test_size_boundaries(shared: Mailbox) -> None:
    size = shared.store.get_messages(message_ids=[shared.entries[0].message_id])
    exact = size[shared.entries[0].message_id].size
    assert 1 not in shared.search(SearchSize("larger", exact))
    assert 1 in shared.search(SearchSize("larger", exact - 1))
    assert 1 not in shared.search(SearchSize("smaller", exact))
    assert 1 in shared.search(SearchSize("smaller", exact + 1))


@pytest.mark.parametrize(
    ("relation", "day", "expected"),
    [
        # Internal dates in UTC: 1: 01-02 04:30, 2: 01-01 16:30, 3: 01-03, 4: 12-31, 5: 02-01
        ("on", date(2024, 1, 2), [1]),
        ("on", date(2024, 1, 1), [2]),
        ("before", date(2024, 1, 2), [2, 4]),
        ("since", date(2024, 1, 2), [1, 3, 5, 6]),
        ("since", date(2024, 3, 2), []),
        ("before", date(2023, 12, 31), []),
    ],
)
def test_internal_date_in_utc(
    shared: Mailbox, relation: str, day: date, expected: list[int]
) -> None:
    key = SearchDate("internal", relation, day)  # type: ignore[arg-type]
    assert shared.search(key, timezone=UTC) == expected


def test_internal_date_in_server_time_zone(shared: Mailbox) -> None:
    """The day is taken in the server's zone (Dovecot: localtime), not the stored offset."""
    on_jan_1 = SearchDate("internal", "on", date(2024, 1, 1))
    on_jan_2 = SearchDate("internal", "on", date(2024, 1, 2))
    # In Tokyo, message 1 (04:30 UTC) and message 2 (16:30 UTC on Jan 1) are both on Jan 2.
    assert shared.search(on_jan_2, timezone=JST) == [1, 2]
    # In New York, message 1 is on the evening of Jan 1 like message 2, and 4 on Dec 31.
    assert shared.search(on_jan_1, timezone=EST) == [1, 2]
    assert shared.search(SearchDate("internal", "before", date(2024, 1, 1)), timezone=EST) == [4]


@pytest.mark.parametrize(
    ("relation", "day", "expected"),
    [
        # Date: fields in their own zones: 1: Jan 1 (-0500), 2: Jan 2 (+0900), 3: Jan 3 (+0900),
        # 4: none, 5: unparseable -> both read as 1970-01-01 (Dovecot), 6: Jan 3 (+0000).
        ("on", date(2024, 1, 1), [1]),
        ("on", date(2024, 1, 2), [2]),
        ("on", date(2024, 1, 3), [3, 6]),
        ("before", date(2024, 1, 2), [1, 4, 5]),
        ("since", date(2024, 1, 2), [2, 3, 6]),
        ("on", date(1970, 1, 1), [4, 5]),
        ("before", date(2000, 1, 1), [4, 5]),
        ("since", date(2024, 1, 10), []),
    ],
)
def test_sent_date_in_its_own_zone(
    shared: Mailbox, relation: str, day: date, expected: list[int]
) -> None:
    key = SearchDate("sent", relation, day)  # type: ignore[arg-type]
    assert shared.search(key) == expected


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (SearchHeader("FROM", "alice"), [1]),
        (SearchHeader("FROM", "Alice Example"), [1]),
        (SearchHeader("FROM", "ALICE@EXAMPLE.ORG"), [1]),
        (SearchHeader("FROM", "jörg müller"), [2]),  # RFC 2047 display name, decoded
        (SearchHeader("FROM", "JÖRG"), [2]),
        (SearchHeader("FROM", "joerg@example.de"), [2]),
        (SearchHeader("TO", "alice"), [2, 3]),
        (SearchHeader("TO", "example.com"), [1]),
        (SearchHeader("CC", "carol"), [2]),
        (SearchHeader("BCC", "secret"), [3]),
        (SearchHeader("SUBJECT", "report"), [1]),
        (SearchHeader("SUBJECT", "grüße aus"), [2]),
        (SearchHeader("SUBJECT", "GRÜSSE"), []),  # ß is not "ss" for Dovecot either
        (SearchHeader("SUBJECT", "Gru"), [2]),  # ü decomposes to u + diaeresis
        (SearchHeader("SUBJECT", "日本語"), [3]),  # ISO-2022-JP encoded word
        (SearchHeader("SUBJECT", "件名"), [3]),
        (SearchHeader("SUBJECT", "no date here"), [4]),  # runs of blanks are one space
        (SearchHeader("SUBJECT", "no   date"), []),
        (SearchHeader("SUBJECT", ""), [1, 2, 3, 4, 5, 6]),
        (SearchHeader("TO", ""), [1, 2, 3]),  # the others have no To field
        (SearchHeader("BCC", ""), [3]),
        (SearchHeader("X-EMPTY", ""), [4]),  # empty value: has the field
        (SearchHeader("X-PRIORITY", "1"), [1]),
        (SearchHeader("x-priority", ""), [1]),
        (SearchHeader("X-PRIORITY", "2"), []),
        (SearchHeader("CONTENT-TRANSFER-ENCODING", "QUOTED"), [2]),
        (SearchHeader("DATE", "+0900"), [2, 3]),
        (SearchHeader("", ""), []),
        (SearchHeader("NOSUCH", "x"), []),
    ],
)
def test_header_keys(shared: Mailbox, criteria: SearchKey, expected: list[int]) -> None:
    assert shared.search(criteria) == expected


BODY_AND_TEXT_CASES: list[tuple[SearchKey, list[int]]] = [
    (SearchBody("quarterly numbers"), [1]),
    (SearchBody("QUARTERLY"), [1]),
    (SearchBody("straße"), [2]),  # quoted-printable UTF-8 body
    (SearchBody("ÉTÉ"), [2]),
    (SearchBody("午後三時"), [3]),  # ISO-2022-JP body
    (SearchBody("οδος"), [5]),  # case folding of Greek, final sigma included
    (SearchBody("ΟΔΌΣ"), []),
    (SearchBody("report"), []),  # only in the Subject
    (SearchText("report"), [1]),
    (SearchText("subject: quarterly"), [1]),
    (SearchText("quarterly"), [1]),
    (SearchBody("needle-at-the-end"), [6]),  # past the stored 128 KiB: read the blob
    (SearchText("NEEDLE-AT-THE-END köln"), [6]),
    (SearchBody("filler line"), [6]),
    (SearchBody("binary-only-word"), []),  # not a text part
    (SearchBody(""), [1, 2, 3, 4, 5, 6]),
    (SearchText(""), [1, 2, 3, 4, 5, 6]),
    (SearchBody("no such words anywhere"), []),
]


@pytest.mark.parametrize(("criteria", "expected"), BODY_AND_TEXT_CASES)
def test_body_and_text(shared: Mailbox, criteria: SearchKey, expected: list[int]) -> None:
    assert shared.search(criteria) == expected


def test_deferred_search_text_searches_the_same_before_and_after_indexing(
    shared: Mailbox, deferred: Mailbox
) -> None:
    assert deferred.store.count_pending_search_text() == len(MESSAGES)
    keys = [criteria for criteria, _ in BODY_AND_TEXT_CASES]
    before = [deferred.search(criteria) for criteria in keys]
    assert before == [expected for _, expected in BODY_AND_TEXT_CASES]
    while deferred.store.index_search_text(limit=2):
        pass
    assert deferred.store.count_pending_search_text() == 0
    assert [deferred.search(criteria) for criteria in keys] == before
    # ...and the indexed rows hold exactly what an indexing ingest stores.
    fields = ["body_text", "body_text_truncated", "header_text", "subject"]
    indexed = deferred.store.search_message_fields(
        message_ids=[e.message_id for e in deferred.entries], fields=fields
    )
    direct = shared.store.search_message_fields(
        message_ids=[e.message_id for e in shared.entries], fields=fields
    )
    assert [indexed[e.message_id] for e in deferred.entries] == [
        direct[e.message_id] for e in shared.entries
    ]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (SearchNot(SearchFlag("\\Seen")), [2, 4, 6]),
        (SearchNot(SearchNot(SearchFlag("\\Seen"))), [1, 3, 5]),
        (SearchOr(SearchFlag("\\Flagged"), SearchFlag("\\Deleted")), [2, 4]),
        (SearchOr(SearchText("report"), SearchFlag("\\Draft")), [1, 5]),
        (SearchOr(SearchBody("needle-at-the-end"), _seq("1")), [1, 6]),
        (SearchNot(SearchOr(SearchFlag("\\Seen"), SearchHeader("FROM", "nodate"))), [2, 6]),
        (
            SearchAnd((SearchFlag("\\Seen"), SearchOr(SearchHeader("TO", "alice"), _seq("5")))),
            [3, 5],
        ),
        (
            SearchOr(
                SearchAnd((SearchHeader("SUBJECT", "report"), SearchFlag("\\Seen"))),
                SearchAnd((SearchNot(SearchFlag("\\Seen")), SearchSize("larger", 100_000))),
            ),
            [1, 6],
        ),
        (
            SearchAnd(
                (
                    SearchNot(SearchBody("quarterly")),
                    SearchDate("sent", "since", date(2024, 1, 1)),
                    _seq("2:*", uid=True),
                )
            ),
            [2, 3, 6],
        ),
        (SearchAnd((SearchText("alice"), SearchNot(SearchText("alice")))), []),
        (SearchOr(SearchNot(SearchText("alice")), SearchText("alice")), [1, 2, 3, 4, 5, 6]),
    ],
)
def test_nesting(shared: Mailbox, criteria: SearchKey, expected: list[int]) -> None:
    assert shared.search(criteria) == expected


def test_text_keys_only_read_remaining_candidates(mailbox: Mailbox) -> None:
    """Flag and sequence keys narrow the set before any text column is read."""
    requested: list[set[int]] = []
    store = mailbox.store
    original = store.iter_message_fields

    def spy(*, message_ids, fields):  # type: ignore[no-untyped-def]
        requested.append(set(message_ids))
        return original(message_ids=message_ids, fields=fields)

    store.iter_message_fields = spy  # type: ignore[method-assign]
    criteria = SearchAnd((SearchBody("quarterly"), SearchFlag("\\Seen"), _seq("1:3")))
    assert mailbox.search(criteria) == [1]
    assert requested == [{mailbox.entries[0].message_id, mailbox.entries[2].message_id}]


def test_many_messages_read_in_chunks(store: MailStore) -> None:
    """More than 500 candidates: one query per 500 ids, same answers."""
    user = store.create_user(name="bulk", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    raws = [_message([f"Subject: item {n}"], f"body number {n}\n") for n in range(1, 1101)]
    store.append_messages(items=[NewMessage(inbox.id, raw) for raw in raws])
    entries = store.list_entries(mailbox_id=inbox.id)
    found = search_messages(store, criteria=SearchBody("number 10"), entries=entries)
    assert [index + 1 for index in found] == [10, *range(100, 110), *range(1000, 1100)]
    chunks = list(
        store.iter_message_fields(message_ids=[e.message_id for e in entries], fields=["size"])
    )
    assert [len(chunk) for chunk in chunks] == [500, 500, 100]


def test_copied_message_in_same_mailbox(mailbox: Mailbox) -> None:
    """Two entries sharing one message both match."""
    store = mailbox.store
    store.copy_messages(
        from_mailbox_id=mailbox.mailbox_id,
        uids=[mailbox.entries[0].uid],
        to_mailbox_id=mailbox.mailbox_id,
    )
    entries = store.list_entries(mailbox_id=mailbox.mailbox_id)
    assert search_messages(store, criteria=SearchText("quarterly"), entries=entries) == [0, 6]


def test_fold_text() -> None:
    assert fold_text("KÖLN") == fold_text("köln")
    assert fold_text("été").startswith("e")
    assert fold_text("ΟΔΟΣ") == fold_text("οδος") == fold_text("οδοσ")
    assert "ss" not in fold_text("ß")


@pytest.mark.parametrize(
    ("needle", "haystack", "found"),
    [
        ("cafe", "Un café noir", True),  # é is e + U+0301: the needle ends on the e
        ("cafes", "Un café noir", False),
        ("ete", "été", False),
        ("E", "été", True),
        ("KÖLN", "Grüße aus Köln", True),
        ("gru", "Grüße", True),
        ("grusse", "Grüße", False),
        ("ss", "Stra\u017fse", True),  # long s title-cases to S, as in Dovecot
        ("σοφος", "ΣΟΦΟΣ", True),
        ("σοφος", "σοφός", False),  # the tonos sits between omicron and sigma
        ("σοφοσ", "ΣΟΦΟΣ", True),
        ("ς", "ΟΔΟΣ", True),
        ("日本", "日本語", True),
        ("テ", "デス", True),
        ("テス", "デス", False),
        ("abc", "xyz", False),
    ],
)
def test_needle_matching(needle: str, haystack: str, found: bool) -> None:
    assert Needle(needle).found_in(haystack) is found
