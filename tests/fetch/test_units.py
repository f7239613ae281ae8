"""Unit tests: bytes in, objects out — dot-unstuffing, keys, retention, keywords, errors."""

from __future__ import annotations

import io
import poplib
import socket
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from gateway.fetch import classify_error, retention_policy, source_keyword
from gateway.fetch.errors import SyncError
from gateway.fetch.pop3_wire import iter_multiline, read_multiline, read_status
from gateway.fetch.retention import messages_to_delete


class _Client:
    def __init__(self, wire: bytes) -> None:
        self.file = io.BufferedReader(io.BytesIO(wire), buffer_size=7)


def _body(wire: bytes, chunk_size: int = 5) -> tuple[bytes, bytes]:
    client = cast(Any, _Client(wire))
    body = b"".join(iter_multiline(client, chunk_size=chunk_size))
    return body, client.file.read()


def test_multiline_undoes_dot_stuffing_and_keeps_line_endings() -> None:
    wire = b"a\r\n..b\r\n.c\r\nbare\nlf\r\n...\r\n\r\n.\r\nNEXT"
    assert _body(wire) == (b"a\r\n.b\r\nc\r\nbare\nlf\r\n..\r\n\r\n", b"NEXT")


def test_multiline_long_lines_are_only_unstuffed_at_their_start() -> None:
    long_line = b"x" * 200_000 + b"\r\n"
    wire = long_line + b"..y" + b"." * 70_000 + b"\r\n.\r\n"
    body, rest = _body(wire, chunk_size=65536)
    assert body == long_line + b".y" + b"." * 70_000 + b"\r\n" and rest == b""


def test_multiline_connection_closed_is_a_connect_error() -> None:
    with pytest.raises(SyncError) as caught:
        _body(b"partial\r\nmessage")
    assert caught.value.error_class == "connect"
    with pytest.raises(SyncError) as caught:
        read_multiline(cast(Any, _Client(b"partial\r\nmessage")))
    assert caught.value.error_class == "connect"


@pytest.mark.parametrize(
    "wire",
    [
        b"a\r\n..b\r\n.c\r\nbare\nlf\r\n...\r\n\r\n.\r\nNEXT",
        b".\r\n+OK next\r\n",  # an empty body
        b"..\r\n.\r\n",  # one stuffed dot only
        b"lf only\n..x\n.\n+OK",  # bare LF line endings, terminator included
        b"no dot\r\n.x\r\nx.\r\n\r\n.\r\n.\r\n",  # the next reply is a body too
        b"x" * 200_000 + b"\r\n..y" + b"." * 70_000 + b"\r\n.\r\nafter",
        b"tricky\r\n.\r.\r\nstill body\r\n.\r\n",  # "." then CR but no LF: not the end
    ],
)
def test_whole_multiline_read_equals_the_streamed_one(wire: bytes) -> None:
    """`read_multiline` (terminator search) against `iter_multiline` (line by line), with a
    7-byte read buffer so terminators straddle reads; the rest stays unread for the next."""
    for buffer_size in (7, 8192):
        client = cast(Any, _Client(wire))
        client.file = io.BufferedReader(io.BytesIO(wire), buffer_size=buffer_size)
        whole = read_multiline(client)
        assert (whole, client.file.read()) == _body(wire)


def test_status_lines() -> None:
    assert read_status(cast(Any, _Client(b"+OK 3 octets\r\n"))) == b"+OK 3 octets"
    with pytest.raises(poplib.error_proto):
        read_status(cast(Any, _Client(b"-ERR no\r\n")))


def test_source_keyword_is_a_valid_distinct_atom() -> None:
    assert source_keyword("isp") == "$Src-isp"
    odd = source_keyword('Work (old) "mail"]*%')
    assert odd.startswith("$Src-Work_old_mail")
    assert not set(odd) & set('(){ %*"\\]') and odd.isascii()
    assert source_keyword("a b") != source_keyword("a_b")
    assert len(source_keyword("n" * 255)) < 60


def test_retention_choices() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    keys = {1: "a", 2: "b", 3: "c"}
    seen = {"a": now - timedelta(days=8), "b": now - timedelta(days=2)}
    days = retention_policy({"retention": "delete_after_days", "retention_days": 7})
    assert messages_to_delete(days, keys=keys, stored={"a", "b"}, first_seen=seen, now=now) == [1]
    download = retention_policy({"retention": "delete_after_download"})
    chosen = messages_to_delete(download, keys=keys, stored={"a", "b"}, first_seen={}, now=now)
    assert chosen == [1, 2], "never c: it is not stored"
    keep = retention_policy({})
    assert messages_to_delete(keep, keys=keys, stored={"a"}, first_seen=seen, now=now) == []
    for bad in ({"retention": "sometimes"}, {"retention": "delete_after_days"}):
        with pytest.raises(SyncError):
            retention_policy(bad)


@pytest.mark.parametrize(
    ("error", "during_auth", "expected"),
    [
        (socket.gaierror(-2, "Name or service not known"), False, "dns"),
        (ConnectionRefusedError(111, "refused"), False, "connect"),
        (TimeoutError(), False, "timeout"),
        (ssl.SSLCertVerificationError(1, "bad"), False, "tls"),
        (ssl.SSLError(1, "wrong version"), False, "tls"),
        (poplib.error_proto(b"-ERR [AUTH] Authentication failed."), False, "auth"),
        (poplib.error_proto(b"-ERR invalid password"), True, "auth"),
        (poplib.error_proto(b"-ERR [LOGIN-DELAY] wait"), True, "throttled"),
        (poplib.error_proto(b"-ERR [IN-USE] locked"), True, "throttled"),
        (poplib.error_proto(b"-ERR Request is throttled"), False, "throttled"),
        (poplib.error_proto(b"-ERR daily download quota exceeded"), False, "quota"),
        (poplib.error_proto(b"-ERR unknown command"), False, "protocol"),
        (EOFError(), False, "connect"),
        (ValueError("x"), False, "protocol"),
    ],
)
def test_classify_error(error: BaseException, during_auth: bool, expected: str) -> None:
    classified = classify_error(error, during_auth=during_auth)
    assert classified.error_class == expected
    assert len(classified.message) < 220


def test_error_text_is_printable_and_bounded() -> None:
    error = classify_error(poplib.error_proto(b"-ERR \x1b[31m" + b"x" * 1000))
    assert "\x1b" not in error.message and len(error.message) < 220
