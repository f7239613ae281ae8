"""Command parser: SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 4731, RFC 7162)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.imap.protocol import CommandError, CommandParser, LiteralContinuation
from gateway.imap.protocol.commands import Noop, Search
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
from tests.imap.parser_support import commands, parse

UNSEEN = SearchFlag("\\Seen", present=False)
DELETED = SearchFlag("\\Deleted")
UNDELETED = SearchFlag("\\Deleted", present=False)


def seq(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


def search(tag: str, *keys: SearchKey, uid: bool = False, **options: object) -> Search:
    return Search(tag, uid=uid, criteria=SearchAnd(keys), **options)  # type: ignore[arg-type]


# Every RFC 3501 §6.4.4 key, alone.
SINGLE_KEYS = [
    (b"ALL", SearchAll()),
    (b"ANSWERED", SearchFlag("\\Answered")),
    (b"BCC boss@example.org", SearchHeader("BCC", "boss@example.org")),
    (b"BEFORE 1-Feb-1994", SearchDate("internal", "before", date(1994, 2, 1))),
    (b'BODY "quarterly report"', SearchBody("quarterly report")),
    (b"CC alice", SearchHeader("CC", "alice")),
    (b"DELETED", DELETED),
    (b"DRAFT", SearchFlag("\\Draft")),
    (b"FLAGGED", SearchFlag("\\Flagged")),
    (b"FROM Smith", SearchHeader("FROM", "Smith")),
    (b'HEADER Message-ID "<abc@example.org>"', SearchHeader("MESSAGE-ID", "<abc@example.org>")),
    (b'HEADER X-Spam ""', SearchHeader("X-SPAM", "")),
    (b"KEYWORD $Junk", SearchFlag("$Junk")),
    (b"LARGER 10000", SearchSize("larger", 10000)),
    (b"NEW", SearchAnd((SearchFlag("\\Recent"), UNSEEN))),
    (b"NOT SEEN", SearchNot(SearchFlag("\\Seen"))),
    (b"OLD", SearchFlag("\\Recent", present=False)),
    (b"ON 17-Jul-1996", SearchDate("internal", "on", date(1996, 7, 17))),
    (b"OR SEEN FLAGGED", SearchOr(SearchFlag("\\Seen"), SearchFlag("\\Flagged"))),
    (b"RECENT", SearchFlag("\\Recent")),
    (b"SEEN", SearchFlag("\\Seen")),
    (b'SENTBEFORE "1-Jan-2000"', SearchDate("sent", "before", date(2000, 1, 1))),
    (b"SENTON 29-Feb-2024", SearchDate("sent", "on", date(2024, 2, 29))),
    (b"SENTSINCE 01-jan-2023", SearchDate("sent", "since", date(2023, 1, 1))),
    (b"SINCE 1-FEB-1994", SearchDate("internal", "since", date(1994, 2, 1))),
    (b"SMALLER 0", SearchSize("smaller", 0)),
    (b"SUBJECT hello", SearchHeader("SUBJECT", "hello")),
    (b'TEXT "string not in mailbox"', SearchText("string not in mailbox")),
    (b"TO bob@example.org", SearchHeader("TO", "bob@example.org")),
    (b"UID 2:4,7", SearchSequence(seq((2, 4), (7, 7)), uid=True)),
    (b"UNANSWERED", SearchFlag("\\Answered", present=False)),
    (b"UNDELETED", UNDELETED),
    (b"UNDRAFT", SearchFlag("\\Draft", present=False)),
    (b"UNFLAGGED", SearchFlag("\\Flagged", present=False)),
    (b"UNKEYWORD $Forwarded", SearchFlag("$Forwarded", present=False)),
    (b"UNSEEN", UNSEEN),
    (b"1:*", SearchSequence(seq((1, None)), uid=False)),
    (b"*", SearchSequence(seq((None, None)), uid=False)),
    (b"2,4:6,10:*", SearchSequence(seq((2, 2), (4, 6), (10, None)), uid=False)),
    (b"(SEEN)", SearchAnd((SearchFlag("\\Seen"),))),
    (b"MODSEQ 620162338", SearchModSeq(620162338)),
    (b"MODSEQ 0", SearchModSeq(0)),
    (b'MODSEQ "/flags/\\\\draft" all 620162338', SearchModSeq(620162338)),
    (b'MODSEQ "/flags/$Junk" PRIV 5', SearchModSeq(5)),
]


@pytest.mark.parametrize(("text", "key"), SINGLE_KEYS, ids=lambda v: repr(v)[:40])
def test_each_search_key(text: bytes, key: SearchKey) -> None:
    assert parse(b"A1 SEARCH " + text) == search("A1", key)
    assert parse(b"A2 UID SEARCH " + text) == search("A2", key, uid=True)


def test_search_keys_are_case_insensitive_but_strings_are_not() -> None:
    assert parse(b"a uid search or unseen not Deleted subject Hello") == search(
        "a",
        SearchOr(UNSEEN, SearchNot(DELETED)),
        SearchHeader("SUBJECT", "Hello"),
        uid=True,
    )


CLIENT_SEARCHES = [
    # imaplib / imapclient
    (b"a2 SEARCH ALL", search("a2", SearchAll())),
    (b"A5 SEARCH UNSEEN", search("A5", UNSEEN)),
    (
        b'A6 SEARCH CHARSET UTF-8 FROM "Smith" SINCE 1-Feb-2023',
        search(
            "A6",
            SearchHeader("FROM", "Smith"),
            SearchDate("internal", "since", date(2023, 2, 1)),
            charset="UTF-8",
        ),
    ),
    # Thunderbird filters
    (
        b"7 UID SEARCH UNDELETED OR SUBJECT invoice FROM billing",
        search(
            "7",
            UNDELETED,
            SearchOr(SearchHeader("SUBJECT", "invoice"), SearchHeader("FROM", "billing")),
            uid=True,
        ),
    ),
    # Apple Mail
    (
        b"8 UID SEARCH 1:* NOT DELETED",
        search("8", SearchSequence(seq((1, None)), uid=False), SearchNot(DELETED), uid=True),
    ),
    (
        b"9 UID SEARCH UID 100:* SINCE 1-Jan-2024",
        search(
            "9",
            SearchSequence(seq((100, None)), uid=True),
            SearchDate("internal", "since", date(2024, 1, 1)),
            uid=True,
        ),
    ),
    # RFC 3501 examples
    (
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
        search(
            "A282",
            SearchFlag("\\Flagged"),
            SearchDate("internal", "since", date(1994, 2, 1)),
            SearchNot(SearchHeader("FROM", "Smith")),
        ),
    ),
    (
        b'A283 SEARCH TEXT "string not in mailbox"',
        search("A283", SearchText("string not in mailbox")),
    ),
    (
        b"A284 SEARCH OR (FROM a SUBJECT b) (NOT SEEN LARGER 5)",
        search(
            "A284",
            SearchOr(
                SearchAnd((SearchHeader("FROM", "a"), SearchHeader("SUBJECT", "b"))),
                SearchAnd((SearchNot(SearchFlag("\\Seen")), SearchSize("larger", 5))),
            ),
        ),
    ),
    # RFC 4731 ESEARCH
    (
        b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994",
        search(
            "A282",
            SearchFlag("\\Flagged"),
            SearchDate("internal", "since", date(1994, 2, 1)),
            return_options=("MIN", "COUNT"),
        ),
    ),
    (
        b"A283 UID SEARCH RETURN () CHARSET us-ascii UNDELETED",
        search("A283", UNDELETED, uid=True, return_options=(), charset="US-ASCII"),
    ),
    (
        b"A284 SEARCH return (all max min count) SEEN",
        search("A284", SearchFlag("\\Seen"), return_options=("ALL", "MAX", "MIN", "COUNT")),
    ),
    # RFC 7162 §3.1.5 example
    (
        b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338',
        search("a", SearchModSeq(620162338)),
    ),
    # K-9: header search
    (
        b"12 UID SEARCH HEADER References <abc@example.org> NOT DELETED",
        search(
            "12",
            SearchHeader("REFERENCES", "<abc@example.org>"),
            SearchNot(DELETED),
            uid=True,
        ),
    ),
    # Latin-1 charset
    (
        b'13 SEARCH CHARSET ISO-8859-1 SUBJECT "caf\xe9"',
        search("13", SearchHeader("SUBJECT", "café"), charset="ISO-8859-1"),
    ),
    # 8-bit UTF-8 in a quoted string without CHARSET (tolerated)
    ('14 SEARCH SUBJECT "Grüße"'.encode(), search("14", SearchHeader("SUBJECT", "Grüße"))),
]


@pytest.mark.parametrize(("line", "expected"), CLIENT_SEARCHES, ids=lambda v: repr(v)[:60])
def test_client_searches(line: bytes, expected: Search) -> None:
    assert parse(line) == expected


def test_search_string_as_synchronising_literal() -> None:
    # Thunderbird sends non-ASCII search strings as literals with CHARSET UTF-8.
    text = "Grüße aus Köln".encode()
    parser = CommandParser()
    parser.receive_data(b"A7 UID SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(text))
    assert parser.next_event() == LiteralContinuation("A7", len(text))
    parser.receive_data(text + b" UNDELETED\r\n")
    assert parser.next_event() == search(
        "A7",
        SearchHeader("SUBJECT", "Grüße aus Köln"),
        UNDELETED,
        uid=True,
        charset="UTF-8",
    )


def test_search_with_several_literals() -> None:
    data = b"A1 SEARCH OR FROM {5+}\r\nalice TO {3}\r\nbob HEADER {4}\r\nX-Id {0}\r\n\r\n"
    assert commands(data) == [
        search(
            "A1",
            SearchOr(SearchHeader("FROM", "alice"), SearchHeader("TO", "bob")),
            SearchHeader("X-ID", ""),
        )
    ]


SEARCH_ERRORS = [
    (b"A1 SEARCH", CommandError("A1", "BAD", "missing argument")),
    (b"A1 SEARCH ", CommandError("A1", "BAD", "expected search key")),
    (b"A1 SEARCH FROBNICATED", CommandError("A1", "BAD", "unknown search key FROBNICATED")),
    (b"A1 SEARCH ALL ", CommandError("A1", "BAD", "expected search key")),
    (b"A1 SEARCH (SEEN", CommandError("A1", "BAD", "expected ')' to close search criteria")),
    (b"A1 SEARCH SEEN)", CommandError("A1", "BAD", "unexpected characters at end of command")),
    (b"A1 SEARCH ()", CommandError("A1", "BAD", "empty search criteria")),
    (b"A1 SEARCH NOT", CommandError("A1", "BAD", "missing argument")),
    (b"A1 SEARCH OR SEEN", CommandError("A1", "BAD", "missing argument")),
    (b"A1 SEARCH BEFORE 32-Jan-2024", CommandError("A1", "BAD", "bad date")),
    (b"A1 SEARCH BEFORE 1-Jan-24", CommandError("A1", "BAD", "bad date")),
    (b"A1 SEARCH SINCE 2024-01-01", CommandError("A1", "BAD", "bad date")),
    (b"A1 SEARCH ON 1-Mai-2024", CommandError("A1", "BAD", "bad month in date")),
    (b"A1 SEARCH LARGER -1", CommandError("A1", "BAD", "expected size")),
    (b"A1 SEARCH LARGER 4294967296", CommandError("A1", "BAD", "size out of range")),
    (b"A1 SEARCH 0", CommandError("A1", "BAD", "sequence number out of range")),
    (b"A1 SEARCH 1:0", CommandError("A1", "BAD", "sequence number out of range")),
    (
        b"A1 SEARCH UID 99999999999999999999999",
        CommandError("A1", "BAD", "sequence number out of range"),
    ),
    (b"A1 SEARCH 1,", CommandError("A1", "BAD", "expected sequence number")),
    (b"A1 SEARCH $", CommandError("A1", "BAD", "unknown search key $")),
    (b"A1 SEARCH KEYWORD \\Seen", CommandError("A1", "BAD", "expected keyword")),
    (
        b"A1 SEARCH MODSEQ 9223372036854775808",
        CommandError("A1", "BAD", "mod-sequence out of range"),
    ),
    (b'A1 SEARCH MODSEQ "/flags/x" other 5', CommandError("A1", "BAD", "bad MODSEQ entry type")),
    (
        b"A1 SEARCH RETURN (SAVE) ALL",
        CommandError("A1", "BAD", "unknown SEARCH return option SAVE"),
    ),
    (b"A1 SEARCH RETURN MIN ALL", CommandError("A1", "BAD", "expected '(' to open return options")),
    (
        b"A1 SEARCH CHARSET KLINGON ALL",
        CommandError("A1", "NO", "unsupported charset KLINGON", code="BADCHARSET (US-ASCII UTF-8)"),
    ),
    (b"A1 SEARCH CHARSET UTF-8", CommandError("A1", "BAD", "missing argument")),
    (b'A1 SEARCH SUBJECT "\xff"', CommandError("A1", "BAD", "string is not valid utf-8")),
    (
        b"A1 SEARCH CHARSET US-ASCII SUBJECT {1+}\r\n\xff",
        CommandError("A1", "BAD", "string is not valid utf-8"),
    ),
]


@pytest.mark.parametrize(("line", "expected"), SEARCH_ERRORS, ids=lambda v: repr(v)[:60])
def test_search_errors(line: bytes, expected: CommandError) -> None:
    assert commands(line + b"\r\nZ NOOP\r\n") == [expected, Noop("Z")]


def test_search_nesting_is_bounded() -> None:
    ok = b"A1 SEARCH " + b"(" * 60 + b"SEEN" + b")" * 60
    key: SearchKey = SearchFlag("\\Seen")
    for _ in range(60):
        key = SearchAnd((key,))
    assert parse(ok) == search("A1", key)
    deep = b"A2 SEARCH " + b"(" * 100 + b"SEEN" + b")" * 100
    assert parse(deep) == CommandError("A2", "BAD", "search criteria nested too deeply")
    nots = b"A3 SEARCH " + b"NOT " * 1000 + b"SEEN"
    assert parse(nots) == CommandError("A3", "BAD", "search criteria nested too deeply")
    ors = b"A4 SEARCH " + b"OR SEEN " * 1000 + b"SEEN"
    assert parse(ors) == CommandError("A4", "BAD", "search criteria nested too deeply")
    unbalanced = b"A5 SEARCH " + b"(" * 10000
    assert parse(unbalanced) == CommandError("A5", "BAD", "search criteria nested too deeply")
