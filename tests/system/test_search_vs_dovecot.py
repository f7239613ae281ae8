"""SEARCH answers what Dovecot answers for the same mailbox.

The same ~300 corpus messages go into Dovecot (IMAP APPEND with flags and internal date) and
into our store (one batch, same flags and dates); for each search of the table the criteria
tree is built by hand, the equivalent SEARCH command goes to Dovecot, and both must return the
same message numbers. The first SELECT takes \\Recent for every message in Dovecot, so the
store side passes every UID as recent.
"""

from __future__ import annotations

import imaplib
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from gateway.imap.protocol.search_keys import (
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)
from gateway.imap.protocol.sequence import SequenceSet
from gateway.imap.search import search_messages
from gateway.store import MailStore, NewMessage
from tests.support.corpus import generate_corpus
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.imap_raw import RawImapClient

pytestmark = pytest.mark.system

FOLDER = "searched"
COUNT = 300
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# A few hand-made messages for what the corpus rarely has: dates near midnight in far zones,
# no Date at all, a folded Subject with runs of blanks, Greek and accented text.
EXTRA = [
    b"From: Night Owl <owl@example.org>\r\nSubject: late  night\r\n\tnote\r\n"
    b"Date: Mon, 1 Jan 2024 23:30:00 -0500\r\n\r\nWritten before midnight in New York.\r\n",
    b"From: early@example.jp\r\nSubject: early bird\r\n"
    b"Date: Tue, 2 Jan 2024 01:30:00 +0900\r\n\r\nWritten after midnight in Tokyo.\r\n",
    b"From: nodate@example.org\r\nSubject: undated\r\n\r\nNo Date field here.\r\n",
    b"From: bad@example.org\r\nSubject: bad date\r\nDate: someday\r\n\r\nBad Date field.\r\n",
    "From: Σωκράτης <s@example.gr>\r\nSubject: ΟΔΟΣ\r\nDate: Wed, 3 Jan 2024 12:00:00 +0200\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Η οδός είναι μακριά. Café crème.\r\n".encode(),  # noqa: RUF001 - Greek on purpose
]


def _flags(index: int) -> tuple[str, ...]:
    flags = []
    for name, modulus, remainder in (
        ("\\Seen", 3, 0),
        ("\\Flagged", 5, 1),
        ("\\Answered", 7, 2),
        ("\\Deleted", 11, 3),
        ("\\Draft", 13, 4),
        ("$Work", 4, 1),
        ("$Junk", 9, 2),
    ):
        if index % modulus == remainder:
            flags.append(name)
    return tuple(flags)


def _internal_date(index: int) -> datetime:
    # Every ~37 hours from mid-2023, at varying minutes: both sides of many midnights.
    return datetime(2023, 6, 1, tzinfo=UTC) + timedelta(hours=37 * index, minutes=13 * index)


def _imap_date(day: date) -> str:
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def _sent_day(raw: bytes, number: int) -> date:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            return parsedate_to_datetime(line[5:].decode().strip()).date()
    raise AssertionError(f"message {number} has no Date")


def _seq(text: str, *, uid: bool = False) -> SearchSequence:
    ranges: list[tuple[int | None, int | None]] = []
    for item in text.split(","):
        first, _, last = item.partition(":")
        low = None if first == "*" else int(first)
        high = low if not last else (None if last == "*" else int(last))
        ranges.append((low, high))
    return SearchSequence(SequenceSet(tuple(ranges)), uid=uid)


def _searches(messages: list[bytes]) -> list[tuple[str, SearchKey]]:
    """(IMAP criteria, the tree our parser builds for them)."""
    sent = _sent_day(messages[9], 10)
    received = _internal_date(120).date()
    seen, flagged = SearchFlag("\\Seen"), SearchFlag("\\Flagged")
    return [
        ("ALL", SearchAll()),
        ("SEEN", seen),
        ("UNSEEN FLAGGED", SearchAnd((SearchFlag("\\Seen", False), flagged))),
        ("ANSWERED DELETED", SearchAnd((SearchFlag("\\Answered"), SearchFlag("\\Deleted")))),
        (
            "UNDRAFT UNDELETED",
            SearchAnd((SearchFlag("\\Draft", False), SearchFlag("\\Deleted", False))),
        ),
        ("KEYWORD $Work", SearchFlag("$Work")),
        ("KEYWORD $work", SearchFlag("$work")),
        ("UNKEYWORD $Junk", SearchFlag("$Junk", False)),
        ("KEYWORD $Nothing", SearchFlag("$Nothing")),
        ("RECENT", SearchFlag("\\Recent")),
        ("NEW", SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", False)))),
        ("OLD", SearchFlag("\\Recent", False)),
        ("1:10,250:*", _seq("1:10,250:*")),
        ("* 295:300", SearchAnd((_seq("*"), _seq("295:300")))),
        ("UID 290:*", _seq("290:*", uid=True)),
        ("UID 1000:*", _seq("1000:*", uid=True)),
        ("UID 5,7,200:203", _seq("5,7,200:203", uid=True)),
        ("LARGER 50000", SearchSize("larger", 50000)),
        ("SMALLER 5000", SearchSize("smaller", 5000)),
        (f"ON {_imap_date(received)}", SearchDate("internal", "on", received)),
        (f"SINCE {_imap_date(received)}", SearchDate("internal", "since", received)),
        ("BEFORE 1-Sep-2023", SearchDate("internal", "before", date(2023, 9, 1))),
        (f"SENTON {_imap_date(sent)}", SearchDate("sent", "on", sent)),
        (f"SENTBEFORE {_imap_date(sent)}", SearchDate("sent", "before", sent)),
        (f"SENTSINCE {_imap_date(sent)}", SearchDate("sent", "since", sent)),
        ("SENTON 1-Jan-2024", SearchDate("sent", "on", date(2024, 1, 1))),
        ("SENTON 2-Jan-2024", SearchDate("sent", "on", date(2024, 1, 2))),
        ("SENTBEFORE 1-Jan-1971", SearchDate("sent", "before", date(1971, 1, 1))),
        ("SUBJECT report", SearchHeader("SUBJECT", "report")),
        ("SUBJECT RE:", SearchHeader("SUBJECT", "RE:")),
        ("SUBJECT 日本語", SearchHeader("SUBJECT", "日本語")),
        ("SUBJECT réunion", SearchHeader("SUBJECT", "réunion")),
        ('SUBJECT "late night note"', SearchHeader("SUBJECT", "late night note")),
        ("SUBJECT οδος", SearchHeader("SUBJECT", "οδος")),
        ("FROM alice", SearchHeader("FROM", "alice")),
        ("FROM jörg", SearchHeader("FROM", "jörg")),
        ("FROM 山田", SearchHeader("FROM", "山田")),
        ("FROM Lefèvre", SearchHeader("FROM", "Lefèvre")),
        ("TO example.com", SearchHeader("TO", "example.com")),
        ("CC jones", SearchHeader("CC", "jones")),
        ("BCC notifications", SearchHeader("BCC", "notifications")),
        ('HEADER In-Reply-To ""', SearchHeader("IN-REPLY-TO", "")),
        ("HEADER Message-ID .12@", SearchHeader("MESSAGE-ID", ".12@")),
        ("HEADER Received mx3", SearchHeader("RECEIVED", "mx3")),
        ("BODY köln", SearchBody("köln")),
        ("BODY 会議", SearchBody("会議")),
        ("BODY ΟΔΌΣ", SearchBody("ΟΔΌΣ")),
        ("BODY cafe", SearchBody("cafe")),
        ('BODY "quarterly budget"', SearchBody("quarterly budget")),
        ("TEXT ünïcödé", SearchText("ünïcödé")),
        ("TEXT mx.example.org", SearchText("mx.example.org")),
        ("TEXT zzqxj", SearchText("zzqxj")),
        ("OR SUBJECT report FLAGGED", SearchOr(SearchHeader("SUBJECT", "report"), flagged)),
        (
            "NOT OR SEEN BODY meeting",
            SearchNot(SearchOr(seen, SearchBody("meeting"))),
        ),
        (
            "(OR FROM alice TO alice) NOT SEEN LARGER 20000",
            SearchAnd(
                (
                    SearchOr(SearchHeader("FROM", "alice"), SearchHeader("TO", "alice")),
                    SearchNot(seen),
                    SearchSize("larger", 20000),
                )
            ),
        ),
        (
            "OR (KEYWORD $Work SENTSINCE 1-Jan-2022) (UID 1:50 NOT BODY project)",
            SearchOr(
                SearchAnd((SearchFlag("$Work"), SearchDate("sent", "since", date(2022, 1, 1)))),
                SearchAnd((_seq("1:50", uid=True), SearchNot(SearchBody("project")))),
            ),
        ),
    ]


def _literal_criteria(text: str) -> bytes:
    """The criteria as an IMAP command tail: non-ASCII atoms as LITERAL+ literals (RFC 7888)."""
    out: list[bytes] = []
    for token in text.split(" "):
        data = token.encode()
        if not token.isascii():
            data = b"{%d+}\r\n" % len(data) + data
        out.append(data)
    return b" ".join(out)


def _dovecot_search(client: RawImapClient, criteria: str) -> list[int]:
    result = client.command(b"SEARCH CHARSET UTF-8 " + _literal_criteria(criteria))
    numbers: list[int] = []
    for response in result.untagged:
        if response.startswith(b"* SEARCH"):
            numbers.extend(int(n) for n in response.split()[2:])
    return numbers


def _load_dovecot(server: DovecotServer, messages: list[bytes]) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.create(FOLDER)
        for index, raw in enumerate(messages):
            flags = "(" + " ".join(_flags(index)) + ")"
            moment = imaplib.Time2Internaldate(_internal_date(index))
            status, _ = client.append(FOLDER, flags, moment, raw)
            assert status == "OK"
    finally:
        client.logout()


def test_search_matches_dovecot(dovecot: DovecotServer, sqlite_store: MailStore) -> None:
    messages = list(generate_corpus(COUNT - len(EXTRA), seed=23)) + EXTRA
    # imaplib sends every line ending as CRLF; the store gets the very same bytes.
    messages = [imaplib.MapCRLF.sub(b"\r\n", raw) for raw in messages]
    _load_dovecot(dovecot, messages)

    user = sqlite_store.create_user(name="alice", password="pw")
    inbox = sqlite_store.get_mailbox(user_id=user.id, name="INBOX").id
    sqlite_store.append_messages(
        items=[
            NewMessage(inbox, raw, _flags(index), _internal_date(index))
            for index, raw in enumerate(messages)
        ]
    )
    entries = sqlite_store.list_entries(mailbox_id=inbox)
    recent = frozenset(entry.uid for entry in entries)

    mismatches: list[str] = []
    with RawImapClient("127.0.0.1", dovecot.imap_port) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.command(b"SELECT " + FOLDER.encode())
        assert _dovecot_search(client, "RECENT") == list(range(1, len(messages) + 1))
        searches = _searches(messages)
        for criteria_text, criteria in searches:
            theirs = _dovecot_search(client, criteria_text)
            ours = [
                index + 1
                for index in search_messages(
                    sqlite_store, criteria=criteria, entries=entries, recent_uids=recent
                )
            ]
            if ours != theirs:
                mismatches.append(
                    f"{criteria_text}: only dovecot {sorted(set(theirs) - set(ours))[:10]}, "
                    f"only ours {sorted(set(ours) - set(theirs))[:10]}"
                )
    assert len(searches) >= 40
    assert not mismatches, "\n".join(mismatches)
