"""Command parser: framing, literals, the non-selected commands, hostile input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.imap.protocol import NEED_DATA, CommandError, CommandParser, LiteralContinuation
from gateway.imap.protocol.commands import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Compress,
    Create,
    Delete,
    Enable,
    Expunge,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Namespace,
    Noop,
    QResyncParameters,
    Rename,
    Select,
    StartTls,
    Status,
    Subscribe,
    Unselect,
    Unsubscribe,
)
from gateway.imap.protocol.sequence import SequenceSet
from tests.imap.parser_support import commands, drain, feed, parse


def seq(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


CLIENT_LINES = [
    # --- any state ---
    (b"a001 CAPABILITY", Capability("a001")),
    (b"1 capability", Capability("1")),
    (b"A5 NOOP", Noop("A5")),
    (b"x.y LoGoUt", Logout("x.y")),
    (
        b'1 ID ("name" "Thunderbird" "version" "115.3.1")',
        Id("1", (("name", "Thunderbird"), ("version", "115.3.1"))),
    ),
    (
        b'A1 ID ("name" "iPhone Mail" "version" "21B101" "os" "iOS" "os-version" "17.1.2"'
        b' "guid" NIL)',
        Id(
            "A1",
            (
                ("name", "iPhone Mail"),
                ("version", "21B101"),
                ("os", "iOS"),
                ("os-version", "17.1.2"),
                ("guid", None),
            ),
        ),
    ),
    (b"2 ID NIL", Id("2", None)),
    (b"3 id ()", Id("3", ())),
    # --- not authenticated ---
    (b"a STARTTLS", StartTls("a")),
    (b"A0 AUTHENTICATE PLAIN", Authenticate("A0", "PLAIN", None)),
    (
        b"A1 AUTHENTICATE PLAIN AHVzZXIAc2VjcmV0",
        Authenticate("A1", "PLAIN", b"\x00user\x00secret"),
    ),
    (b"A2 authenticate xoauth2 =", Authenticate("A2", "XOAUTH2", b"")),
    (b"a001 LOGIN SMITH SESAME", Login("a001", "SMITH", "SESAME")),
    (b'A1 LOGIN "alice@example.org" "p\\"w\\\\d"', Login("A1", "alice@example.org", 'p"w\\d')),
    (b"b login {5+}\r\nalice {6+}\r\nse cre", Login("b", "alice", "se cre")),
    ('c LOGIN "jörg" "pässword"'.encode(), Login("c", "jörg", "pässword")),
    # --- authenticated: selection ---
    (b"A142 SELECT INBOX", Select("A142", "INBOX")),
    (b"3 select inbox", Select("3", "INBOX")),
    (b'4 SELECT "InBoX"', Select("4", "INBOX")),
    (b'A282 EXAMINE "Sent Items"', Select("A282", "Sent Items", read_only=True)),
    (b'5 SELECT "Entw&APw-rfe"', Select("5", "Entwürfe")),
    (b"6 SELECT INBOX (CONDSTORE)", Select("6", "INBOX", condstore=True)),
    (
        b"5 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        Select(
            "5",
            "INBOX",
            qresync=QResyncParameters(
                67890007, 20050715194045000, seq((41, 41), (43, 211), (214, 541))
            ),
        ),
    ),
    (
        b"B283 SELECT INBOX (QRESYNC (67890007 20050715194045000 1:29997"
        b" (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976:29979)))",
        Select(
            "B283",
            "INBOX",
            qresync=QResyncParameters(
                67890007,
                20050715194045000,
                seq((1, 29997)),
                (
                    seq((5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999)),
                    seq(
                        (15000, 15000),
                        (22500, 22500),
                        (27000, 27000),
                        (29970, 29970),
                        (29973, 29973),
                        (29976, 29979),
                    ),
                ),
            ),
        ),
    ),
    (
        b"7 SELECT INBOX (CONDSTORE QRESYNC (1 2))",
        Select("7", "INBOX", condstore=True, qresync=QResyncParameters(1, 2)),
    ),
    (
        b"8 EXAMINE INBOX (QRESYNC (9 8 (1:3 4:6)))",
        Select(
            "8",
            "INBOX",
            read_only=True,
            qresync=QResyncParameters(9, 8, None, (seq((1, 3)), seq((4, 6)))),
        ),
    ),
    # --- authenticated: mailbox management ---
    (b"A003 CREATE owatagusiam/", Create("A003", "owatagusiam/")),
    (b'9 CREATE "Archive" (USE (\\Archive))', Create("9", "Archive", ("\\Archive",))),
    (b"9 create Sent (use (\\sent \\Junk))", Create("9", "Sent", ("\\Sent", "\\Junk"))),
    (b"A4 DELETE blurdybloop", Delete("A4", "blurdybloop")),
    (b'A683 RENAME blurdybloop "sarasoop"', Rename("A683", "blurdybloop", "sarasoop")),
    (b"A5 RENAME inbox Old-Mail", Rename("A5", "INBOX", "Old-Mail")),
    (b"A002 SUBSCRIBE #news.comp.mail.mime", Subscribe("A002", "#news.comp.mail.mime")),
    (b'A3 UNSUBSCRIBE "Trash"', Unsubscribe("A3", "Trash")),
    (b"A4 NAMESPACE", Namespace("A4")),
    (
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
        Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES")),
    ),
    (
        b'12 status "INBOX" (messages recent unseen uidnext uidvalidity highestmodseq size)',
        Status(
            "12",
            "INBOX",
            ("MESSAGES", "RECENT", "UNSEEN", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ", "SIZE"),
        ),
    ),
    # --- LIST / LSUB ---
    (b'A101 LIST "" ""', List("A101", "", ("",))),
    (b'A102 LIST #news.comp.mail.misc ""', List("A102", "#news.comp.mail.misc", ("",))),
    (b'3 list "" *', List("3", "", ("*",))),
    # Not modified UTF-7: kept as sent, it matches no mailbox (imaptest `atoms`, as Dovecot).
    (b'4 LIST "" !#$&\'+,-.:;<=>?@^_`|[}%*', List("4", "", ("!#$&'+,-.:;<=>?@^_`|[}%*",))),
    (b'5 LIST "&Jjo" %', List("5", "&Jjo", ("%",))),
    (b'4 LIST "" "%"', List("4", "", ("%",))),
    (b"5 LIST ~/Mail/ %", List("5", "~/Mail/", ("%",))),
    (b'6 LIST "" inbox', List("6", "", ("INBOX",))),
    (b'7 LIST "" "&ZeVnLIqe-/*"', List("7", "", ("日本語/*",))),
    (b"8 LIST Foo/ %/Bar]", List("8", "Foo/", ("%/Bar]",))),
    (
        b'A01 LIST (SUBSCRIBED) "" ("INBOX" "Sent")'
        b" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))",
        List(
            "A01",
            "",
            ("INBOX", "Sent"),
            selection=frozenset({"SUBSCRIBED"}),
            return_options=frozenset({"CHILDREN", "SPECIAL-USE"}),
            status_items=("MESSAGES", "UNSEEN"),
            extended=True,
        ),
    ),
    (
        b'2 LIST "" "*" RETURN (SPECIAL-USE)',
        List("2", "", ("*",), return_options=frozenset({"SPECIAL-USE"}), extended=True),
    ),
    (
        b'3 LIST (SPECIAL-USE) "" "*"',
        List("3", "", ("*",), selection=frozenset({"SPECIAL-USE"}), extended=True),
    ),
    (b'4 LIST () "" %', List("4", "", ("%",), extended=True)),
    (
        b'5 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN ()',
        List("5", "", ("%",), selection=frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}), extended=True),
    ),
    (
        b'6 list "" % return (status (uidnext uidvalidity))',
        List("6", "", ("%",), status_items=("UIDNEXT", "UIDVALIDITY"), extended=True),
    ),
    (b'A002 LSUB "#news." "comp.mail.*"', Lsub("A002", "#news.", "comp.mail.*")),
    (b'7 LSUB "" %', Lsub("7", "", "%")),
    # --- ENABLE / IDLE / COMPRESS ---
    (b"t1 ENABLE CONDSTORE", Enable("t1", ("CONDSTORE",))),
    (
        b"t2 enable qresync condstore utf8=accept",
        Enable("t2", ("QRESYNC", "CONDSTORE", "UTF8=ACCEPT")),
    ),
    (b"A4 IDLE", Idle("A4")),
    (b"A5 COMPRESS deflate", Compress("A5", "DEFLATE")),
    # --- selected, no arguments ---
    (b"FXXZ CHECK", Check("FXXZ")),
    (b"A341 CLOSE", Close("A341")),
    (b"A342 UNSELECT", Unselect("A342")),
    (b"A202 EXPUNGE", Expunge("A202")),
    (b"A003 UID EXPUNGE 3000:3002", Expunge("A003", seq((3000, 3002)))),
    (b"x uid expunge 1,4:*", Expunge("x", seq((1, 1), (4, None)))),
]


@pytest.mark.parametrize(("line", "expected"), CLIENT_LINES, ids=lambda v: repr(v)[:60])
def test_client_lines(line: bytes, expected: object) -> None:
    assert parse(line) == expected


APPEND_TRANSCRIPTS = [
    # RFC 3501 §6.3.11 example
    (
        b"A003 APPEND saved-messages (\\Seen) {310}\r\n",
        310,
        Append(
            "A003",
            "saved-messages",
            ("\\Seen",),
            None,
            b"x" * 310,
        ),
    ),
    # Thunderbird saving a draft
    (
        b'8 append "Drafts" (\\Draft $MDNSent) "17-Jul-1996 02:44:25 -0700" {12}\r\n',
        12,
        Append(
            "8",
            "Drafts",
            ("\\Draft", "$MDNSent"),
            datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7))),
            b"x" * 12,
        ),
    ),
    # imaplib's Time2Internaldate pads the day with a space
    (
        b'A4 APPEND INBOX () " 5-Jan-2024 10:00:00 +0130" {3}\r\n',
        3,
        Append(
            "A4",
            "INBOX",
            (),
            datetime(2024, 1, 5, 10, 0, 0, tzinfo=timezone(timedelta(hours=1, minutes=30))),
            b"x" * 3,
        ),
    ),
    (b"A5 APPEND Sent {0}\r\n", 0, Append("A5", "Sent", (), None, b"")),
]


@pytest.mark.parametrize(("head", "size", "expected"), APPEND_TRANSCRIPTS)
def test_append_with_synchronising_literal(head: bytes, size: int, expected: Append) -> None:
    parser = CommandParser()
    parser.receive_data(head)
    assert parser.next_event() == LiteralContinuation(expected.tag, size)
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"x" * size)
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"\r\n")
    assert parser.next_event() == expected
    assert parser.next_event() is NEED_DATA


def test_append_literal_plus_needs_no_continuation() -> None:
    message = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    data = b"A1 APPEND INBOX (\\Seen) {%d+}\r\n" % len(message) + message + b"\r\nA2 NOOP\r\n"
    events = feed(data)
    assert events == [Append("A1", "INBOX", ("\\Seen",), None, message), Noop("A2")]
    assert feed(data, chunk=1) == events
    assert feed(data, chunk=7) == events


def test_literal_split_across_many_calls_gives_same_result() -> None:
    message = bytes(range(1, 256)) * 40
    data = b"A1 APPEND INBOX {%d}\r\n" % len(message) + message + b"\r\nA2 LOGOUT\r\n"
    whole = feed(data)
    assert whole == [
        LiteralContinuation("A1", len(message)),
        Append("A1", "INBOX", (), None, message),
        Logout("A2"),
    ]
    for chunk in (1, 2, 3, 10, 1000):
        assert feed(data, chunk=chunk) == whole


def test_login_with_two_synchronising_literals() -> None:
    parser = CommandParser()
    parser.receive_data(b"A1 LOGIN {5}\r\n")
    assert parser.next_event() == LiteralContinuation("A1", 5)
    parser.receive_data(b"alice {11}\r\n")
    assert parser.next_event() == LiteralContinuation("A1", 11)
    parser.receive_data(b'pass\r\nw"ord\r\n')
    assert parser.next_event() == Login("A1", "alice", 'pass\r\nw"ord')


def test_pipelined_commands_and_bare_lf() -> None:
    data = b"1 NOOP\r\n2 CAPABILITY\n3 SELECT INBOX\r\n4 LOGOUT"
    assert feed(data) == [Noop("1"), Capability("2"), Select("3", "INBOX")]


def test_next_line_reads_raw_lines() -> None:
    parser = CommandParser(max_line_length=22)
    parser.receive_data(b"A1 AUTHENTICATE PLAIN\r\n")
    assert parser.next_event() == Authenticate("A1", "PLAIN", None)
    assert parser.next_line() is NEED_DATA
    parser.receive_data(b"AHVzZXIA\r\nDONE\nA2 NOOP\r\n")
    assert parser.next_line() == b"AHVzZXIA"
    assert parser.next_line() == b"DONE"
    assert parser.next_event() == Noop("A2")
    # An overlong line is cut, and its rest never reaches the command parser.
    parser.receive_data(b"0123456789" * 3)
    assert parser.next_line() == b"0123456789012345678901"
    parser.receive_data(b"ghij\r\nA3 NOOP\r\n")
    assert parser.next_event() == Noop("A3")


def test_drain_buffer_takes_unread_input() -> None:
    parser = CommandParser()
    parser.receive_data(b"A1 STARTTLS\r\nA2 LOGIN injected x\r\n")
    assert parser.next_event() == StartTls("A1")
    assert parser.drain_buffer() == b"A2 LOGIN injected x\r\n"
    assert parser.next_event() is NEED_DATA


# --- errors -------------------------------------------------------------------------------

BAD_LINES = [
    (b"A1 FROB", CommandError("A1", "BAD", "unknown command")),
    (b"A1 UID NOOP", CommandError("A1", "BAD", "unknown command")),
    (b"A1", CommandError("A1", "BAD", "missing argument")),
    (b"", CommandError(None, "BAD", "missing or invalid tag")),
    (b"+ NOOP", CommandError(None, "BAD", "missing or invalid tag")),
    (b"* NOOP", CommandError(None, "BAD", "missing or invalid tag")),
    (b"A(1 NOOP", CommandError(None, "BAD", "missing or invalid tag")),
    (b" NOOP", CommandError(None, "BAD", "missing or invalid tag")),
    (b"A1 NOOP extra", CommandError("A1", "BAD", "unexpected characters at end of command")),
    (b"A1  NOOP", CommandError("A1", "BAD", "expected command name")),
    (b"A1 LOGIN alice", CommandError("A1", "BAD", "missing argument")),
    (b'A1 LOGIN "alice secret', CommandError("A1", "BAD", "unterminated quoted string")),
    (b'A1 LOGIN "a\\lice" x', CommandError("A1", "BAD", "bad escape in quoted string")),
    (b"A1 LOGIN \xff\xfe x", CommandError("A1", "BAD", "expected user name")),
    (b'A1 LOGIN "\xff\xfe" x', CommandError("A1", "BAD", "string is not valid utf-8")),
    (
        b"A1 AUTHENTICATE PLAIN AHV=zZXI",
        CommandError("A1", "BAD", "initial response is not valid base64"),
    ),
    (b"A1 SELECT", CommandError("A1", "BAD", "missing argument")),
    (
        b"A1 SELECT INBOX (FOO)",
        CommandError("A1", "BAD", "unknown or repeated select parameter FOO"),
    ),
    (b"A1 SELECT INBOX ()", CommandError("A1", "BAD", "empty select parameters")),
    (
        b"A1 SELECT INBOX (CONDSTORE",
        CommandError("A1", "BAD", "expected ')' to close select parameters"),
    ),
    (b"A1 SELECT INBOX (QRESYNC (0 5))", CommandError("A1", "BAD", "UIDVALIDITY out of range")),
    (b"A1 SELECT INBOX (QRESYNC (1 0))", CommandError("A1", "BAD", "mod-sequence out of range")),
    (
        b"A1 SELECT INBOX (QRESYNC (1 9223372036854775808))",
        CommandError("A1", "BAD", "mod-sequence out of range"),
    ),
    (b"A1 SELECT INBOX (QRESYNC (1 2 1:*))", CommandError("A1", "BAD", "'*' not allowed here")),
    (
        b"A1 SELECT &Jjo",
        CommandError("A1", "NO", "bad mailbox name: unterminated '&' in mailbox name"),
    ),
    (
        b'A1 SELECT "&AGE-"',
        CommandError(
            "A1", "NO", "bad mailbox name: printable ASCII encoded in mailbox name: &AGE-"
        ),
    ),
    (
        'A1 SELECT "Entwürfe"'.encode(),
        CommandError("A1", "BAD", "mailbox name is not modified UTF-7 (8-bit characters)"),
    ),
    (b"A1 CREATE x (USE (Sent))", CommandError("A1", "BAD", "expected special-use attribute")),
    (
        b"A1 CREATE x (FOO (\\Sent))",
        CommandError("A1", "BAD", "unknown or repeated create parameter FOO"),
    ),
    (b"A1 STATUS INBOX ()", CommandError("A1", "BAD", "empty status items")),
    (b"A1 STATUS INBOX (MESSAGES FOO)", CommandError("A1", "BAD", "unknown status item FOO")),
    (b"A1 STATUS INBOX MESSAGES", CommandError("A1", "BAD", "expected '(' to open status items")),
    (b'A1 LIST (FOO) "" %', CommandError("A1", "BAD", "unknown LIST selection option FOO")),
    (
        b'A1 LIST (RECURSIVEMATCH) "" %',
        CommandError("A1", "BAD", "RECURSIVEMATCH needs another selection option"),
    ),
    (
        b'A1 LIST "" % RETURN (FOO)',
        CommandError("A1", "BAD", "unknown or repeated LIST return option FOO"),
    ),
    (b'A1 LIST "" % FOO (CHILDREN)', CommandError("A1", "BAD", "expected RETURN")),
    (b'A1 LIST "" ()', CommandError("A1", "BAD", "empty patterns")),
    (b'A1 LIST ""', CommandError("A1", "BAD", "missing argument")),
    (b'A1 LIST ((SUBSCRIBED)) "" %', CommandError("A1", "BAD", "expected selection option")),
    (
        b'A1 LIST (SUBSCRIBED "" %',
        CommandError("A1", "BAD", "expected selection option"),
    ),
    (b"A1 STATUS INBOX ((MESSAGES)", CommandError("A1", "BAD", "expected status item")),
    (b"A1 ENABLE", CommandError("A1", "BAD", "ENABLE needs a capability")),
    (b'A1 ID ("name")', CommandError("A1", "BAD", "expected space")),
    (b'A1 ID (name "x")', CommandError("A1", "BAD", "expected string")),
    (b"A1 IDLE now", CommandError("A1", "BAD", "unexpected characters at end of command")),
    (b"A1 EXPUNGE 1:5", CommandError("A1", "BAD", "unexpected characters at end of command")),
    (b"A1 UID EXPUNGE", CommandError("A1", "BAD", "missing argument")),
    (b"A1 UID EXPUNGE 0", CommandError("A1", "BAD", "sequence number out of range")),
    (b"A1 UID EXPUNGE 4294967296", CommandError("A1", "BAD", "sequence number out of range")),
    (
        b'A1 APPEND INBOX "31-Feb-2024 10:00:00 +0000" {1+}\r\nx',
        CommandError("A1", "BAD", "bad date"),
    ),
    (
        b'A1 APPEND INBOX "1-Foo-2024 10:00:00 +0000" {1+}\r\nx',
        CommandError("A1", "BAD", "bad month in date"),
    ),
    (
        b'A1 APPEND INBOX "1-Jan-2024 25:00:00 +0000" {1+}\r\nx',
        CommandError("A1", "BAD", "bad time in date-time"),
    ),
    (
        b'A1 APPEND INBOX "1-Jan-2024 10:00:00 +0099" {1+}\r\nx',
        CommandError("A1", "BAD", "bad time zone in date-time"),
    ),
    (
        b'A1 APPEND INBOX "1-Jan-2024 10:00:00" {1+}\r\nx',
        CommandError("A1", "BAD", "bad date-time"),
    ),
    (b'A1 APPEND INBOX (\\Seen) "hello"', CommandError("A1", "BAD", "bad date-time")),
    (b"A1 APPEND INBOX hello", CommandError("A1", "BAD", "expected literal")),
]


@pytest.mark.parametrize(("line", "expected"), BAD_LINES, ids=lambda v: repr(v)[:60])
def test_bad_commands_are_reported_and_the_next_command_parses(
    line: bytes, expected: CommandError
) -> None:
    events = commands(line + b"\r\nZ9 NOOP\r\n")
    assert events == [expected, Noop("Z9")]


def test_error_before_a_synchronising_literal_is_reported_before_continuation() -> None:
    parser = CommandParser()
    parser.receive_data(b"A1 FROB {5}\r\n")
    assert parser.next_event() == CommandError("A1", "BAD", "unknown command")
    # The client does not send the literal after a BAD; the next line is a new command.
    parser.receive_data(b"A2 NOOP\r\n")
    assert parser.next_event() == Noop("A2")


def test_error_with_non_synchronising_literals_swallows_the_whole_command() -> None:
    data = b"A1 FROB {5+}\r\nA9 NO {3+}\r\nX\r\n\r\nA2 NOOP\r\n"
    assert commands(data) == [CommandError("A1", "BAD", "unknown command"), Noop("A2")]


def test_unexpected_literal_is_refused() -> None:
    assert commands(b"A1 NOOP {3}\r\nA2 NOOP\r\n") == [
        CommandError("A1", "BAD", "unexpected characters at end of command"),
        Noop("A2"),
    ]
    assert commands(b"A1 NOOP{3}\r\nA2 NOOP\r\n")[0] == CommandError(
        "A1", "BAD", "unexpected literal"
    )


def test_huge_synchronising_literal_is_refused_at_once() -> None:
    parser = CommandParser(max_literal_size=1000)
    parser.receive_data(b"A1 APPEND INBOX {1001}\r\n")
    assert parser.next_event() == CommandError("A1", "NO", "literal too large", code="TOOBIG")
    parser.receive_data(b"A2 APPEND INBOX {99999999999999999999999999999}\r\n")
    assert parser.next_event() == CommandError("A2", "NO", "literal too large", code="TOOBIG")
    parser.receive_data(b"A3 NOOP\r\n")
    assert parser.next_event() == Noop("A3")
    assert parser.buffered_size == 0


def test_huge_non_synchronising_literal_is_swallowed_unbuffered() -> None:
    parser = CommandParser(max_literal_size=1000, max_line_length=100)
    parser.receive_data(b"A1 APPEND INBOX {5000+}\r\n")
    for _ in range(5):
        parser.receive_data(b"x" * 1000)
        assert parser.next_event() is NEED_DATA
        assert parser.buffered_size == 0
    parser.receive_data(b"\r\nA2 NOOP\r\n")
    assert drain(parser) == [
        CommandError("A1", "NO", "literal too large", code="TOOBIG"),
        Noop("A2"),
    ]


def test_set_max_literal_size() -> None:
    parser = CommandParser()
    parser.set_max_literal_size(10)
    parser.receive_data(b"A1 APPEND INBOX {11}\r\n")
    assert parser.next_event() == CommandError("A1", "NO", "literal too large", code="TOOBIG")


def test_string_literal_is_limited_to_the_line_length() -> None:
    parser = CommandParser(max_line_length=100)
    parser.receive_data(b"A1 LOGIN {101}\r\n")
    assert parser.next_event() == CommandError("A1", "NO", "literal too large", code="TOOBIG")


def test_overlong_line() -> None:
    parser = CommandParser(max_line_length=50)
    parser.receive_data(b"A1 LOGIN " + b"a" * 100)
    assert parser.next_event() is NEED_DATA
    assert parser.buffered_size == 0
    parser.receive_data(b"b" * 100)
    assert parser.next_event() is NEED_DATA
    parser.receive_data(b"c\r\nA2 NOOP\r\n")
    assert drain(parser) == [CommandError("A1", "BAD", "line too long"), Noop("A2")]
    # No tag in sight: untagged error.
    parser.receive_data(b"x" * 200 + b"\r\nA3 NOOP\r\n")
    assert drain(parser) == [CommandError(None, "BAD", "line too long"), Noop("A3")]
    # The limit is exact: 50 bytes pass, 51 do not.
    parser.receive_data(b"A4 LOGIN " + b"a" * 39 + b" b\r\n")
    assert drain(parser) == [Login("A4", "a" * 39, "b")]
    parser.receive_data(b"A5 LOGIN " + b"a" * 40 + b" b\n")
    assert drain(parser) == [CommandError("A5", "BAD", "line too long")]


def test_overlong_line_after_a_literal_keeps_the_tag() -> None:
    data = b"A1 LOGIN {3+}\r\nabc " + b"x" * 100 + b"\r\nA2 NOOP\r\n"
    assert commands(data, max_line_length=50) == [
        CommandError("A1", "BAD", "line too long"),
        Noop("A2"),
    ]


def test_nul_bytes_are_refused() -> None:
    assert commands(b"A1 LOGIN a\x00b c\r\nA2 NOOP\r\n") == [
        CommandError("A1", "BAD", "NUL byte in command"),
        Noop("A2"),
    ]
    assert commands(b"A1 LOGIN {3+}\r\na\x00b c\r\nA2 NOOP\r\n") == [
        CommandError("A1", "BAD", "NUL in string"),
        Noop("A2"),
    ]
    assert commands(b"A1 LOGIN x y\x00 {2+}\r\nab\r\nA2 NOOP\r\n") == [
        CommandError("A1", "BAD", "NUL byte in command"),
        Noop("A2"),
    ]


def test_append_message_may_contain_any_octet() -> None:
    message = bytes(range(256))
    data = b"A1 APPEND INBOX {256+}\r\n" + message + b"\r\n"
    assert commands(data) == [Append("A1", "INBOX", (), None, message)]


def test_too_many_literals() -> None:
    data = b"A1 SEARCH" + b" TEXT {1+}\r\nx" * 70 + b"\r\nA2 NOOP\r\n"
    assert commands(data) == [CommandError("A1", "BAD", "too many literals in command"), Noop("A2")]


def test_total_command_size_is_bounded() -> None:
    # Lines and literals together stay under max_literal_size + max_line_length (220 here).
    parser = CommandParser(max_line_length=100, max_literal_size=120)
    parser.receive_data(b"A1 SEARCH TEXT {100}\r\n")
    assert parser.next_event() == LiteralContinuation("A1", 100)
    parser.receive_data(b"x" * 100 + b" TEXT {100}\r\n")
    assert parser.next_event() == CommandError("A1", "NO", "literal too large", code="TOOBIG")


def test_literal_announcement_inside_quoted_string_is_rejected_before_continuation() -> None:
    parser = CommandParser()
    parser.receive_data(b'A1 LOGIN "abc {5}\r\n')
    assert parser.next_event() == CommandError("A1", "BAD", "unterminated quoted string")


def test_re_parsing_at_literals_is_bounded() -> None:
    # Each literal announcement re-checks the command so far; long lines between many
    # literals would make that quadratic, so the command is refused instead.
    data = b"A1 SEARCH ALL" + b"".join(b" SEEN" * 2000 + b" TEXT {1+}\r\nx" for _ in range(60))
    assert commands(data + b"\r\nA2 NOOP\r\n") == [
        CommandError("A1", "BAD", "command too complex"),
        Noop("A2"),
    ]
    # Many short literals are fine.
    data = b"A3 SEARCH ALL" + b" TEXT {1+}\r\nx" * 60 + b"\r\n"
    [search] = commands(data)
    assert search.tag == "A3"
    assert not isinstance(search, CommandError)
