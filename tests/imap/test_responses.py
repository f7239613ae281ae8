"""Response encoding helpers (RFC 3501 §7, §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.imap.protocol import responses


def test_quoted_escapes_specials() -> None:
    assert responses.quoted("hello") == b'"hello"'
    assert responses.quoted(b'say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'
    assert responses.quoted("") == b'""'


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\x00b", "café", b"\xff"])
def test_quoted_refuses_what_it_cannot_hold(value: str | bytes) -> None:
    with pytest.raises(ValueError, match="cannot be quoted"):
        responses.quoted(value)


def test_string_falls_back_to_literal() -> None:
    assert responses.string("Subject") == b'"Subject"'
    assert responses.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert responses.string("café") == b"{5}\r\ncaf\xc3\xa9"
    assert responses.string(b"nul\x00") == b"{4}\r\nnul\x00"
    long_value = "x" * 2000
    assert responses.string(long_value) == b"{2000}\r\n" + long_value.encode()
    assert responses.string("x" * 1024) == b'"' + b"x" * 1024 + b'"'


def test_nstring() -> None:
    assert responses.nstring(None) == b"NIL"
    assert responses.nstring(b"") == b'""'
    assert responses.nstring(b"text") == b'"text"'


def test_astring() -> None:
    assert responses.astring("INBOX") == b"INBOX"
    assert responses.astring("foo]bar") == b"foo]bar"
    assert responses.astring("two words") == b'"two words"'
    assert responses.astring("") == b'""'
    assert responses.astring("NIL") == b'"NIL"'
    assert responses.astring("a(b") == b'"a(b"'
    assert responses.astring("ü") == b"{2}\r\n\xc3\xbc"


def test_mailbox_name() -> None:
    assert responses.mailbox_name("INBOX") == b'"INBOX"'
    assert responses.mailbox_name("Entwürfe") == b'"Entw&APw-rfe"'
    assert responses.mailbox_name('Say "hi"') == b'"Say \\"hi\\""'
    assert responses.mailbox_name("Tom & Jerry") == b'"Tom &- Jerry"'


def test_flag_list() -> None:
    assert responses.flag_list(["\\Seen", "$Junk"]) == b"(\\Seen $Junk)"
    assert responses.flag_list([]) == b"()"
    assert responses.flag_list(iter(("\\Answered",))) == b"(\\Answered)"


def test_internal_date_keeps_offset() -> None:
    zone = timezone(-timedelta(hours=7))
    moment = datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)
    assert responses.internal_date(moment) == b'"17-Jul-1996 02:44:25 -0700"'
    east = timezone(timedelta(hours=5, minutes=30))
    assert responses.internal_date(datetime(2024, 1, 5, 23, 0, 9, tzinfo=east)) == (
        b'"05-Jan-2024 23:00:09 +0530"'
    )
    assert responses.internal_date(datetime(2024, 12, 31, 0, 0, 0, tzinfo=UTC)) == (
        b'"31-Dec-2024 00:00:00 +0000"'
    )
    assert responses.internal_date(datetime(2024, 12, 31)) == b'"31-Dec-2024 00:00:00 +0000"'


def test_sequence_set_text() -> None:
    assert responses.sequence_set_text([1, 2, 3, 5]) == "1:3,5"
    assert responses.sequence_set_text([5, 3, 1, 2, 2]) == "1:3,5"
    assert responses.sequence_set_text([]) == ""
    assert responses.sequence_set_text([7]) == "7"
    assert responses.sequence_set_text(range(10, 20)) == "10:19"
    assert responses.sequence_set_text([1, 3, 5, 6, 8, 9, 10]) == "1,3,5:6,8:10"


def test_tagged() -> None:
    assert responses.tagged("A1", "OK", "LOGIN completed") == b"A1 OK LOGIN completed\r\n"
    assert responses.tagged("A2", "NO", "too big", "TOOBIG") == b"A2 NO [TOOBIG] too big\r\n"
    assert responses.tagged("A3", "OK", "", "READ-WRITE") == b"A3 OK [READ-WRITE] ok\r\n"


def test_status_text_never_breaks_the_line() -> None:
    line = responses.tagged("A1", "BAD", "evil\r\nA2 OK injected", "X\nY")
    assert line == b"A1 BAD [X Y] evil A2 OK injected\r\n"
    assert line.count(b"\r\n") == 1
    assert responses.continuation("Ready\r\nfor\x00literal") == b"+ Ready for literal\r\n"


def test_untagged_and_continuation() -> None:
    assert responses.untagged("3 EXISTS") == b"* 3 EXISTS\r\n"
    assert responses.untagged(b"1 FETCH (BODY[] {2}\r\nhi)") == b"* 1 FETCH (BODY[] {2}\r\nhi)\r\n"
    assert responses.continuation("Ready for literal data") == b"+ Ready for literal data\r\n"
    assert responses.continuation("") == b"+ \r\n"
