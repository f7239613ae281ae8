"""The one module that reaches into aiosmtpd beyond its documented hooks (tested with 1.4.6).

What it adds to `aiosmtpd.smtp.SMTP`:
- RFC 2034 enhanced status codes on every reply aiosmtpd composes itself (ours already carry
  them, `replies.py`); none in the greeting and the EHLO response, as §4 there says.
- Source routes (`<@relay:user@host>`, RFC 5321 §4.1.1.3 and appendix C) refused before
  aiosmtpd's parser silently drops the route.
- The per-address connection limit (shared with IMAP, `gateway.connection_limits`), checked
  before aiosmtpd sees the connection: no greeting, no session, just 421 and close.
- DATA read in bulk: aiosmtpd reads the message one line at a time (a `readuntil` and a
  few list operations per line, ~800 lines for a 60 KB message), which was a third of the
  event loop's time under the sending benchmark (py-spy, docs/benchmarks.md). The same
  replies and the same bytes, from a few `readuntil` calls per message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, syntax

from gateway.connection_limits import ConnectionLimits
from gateway.smtp import replies

log = logging.getLogger("gateway.smtp")

_HAS_ENHANCED = re.compile(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?:\s|$)")
_GENERIC_DETAIL = {
    b"2": b"2.0.0",
    b"4": b"4.0.0",
    b"5": b"5.5.0",
}
# Codes whose meaning has a more exact enhanced code (RFC 3463 §3).
_SPECIFIC = {
    b"530": b"5.7.0",
    b"552": b"5.3.4",
    b"553": b"5.1.3",
    b"501": b"5.5.4",
    b"500": b"5.5.1",
    b"502": b"5.5.1",
    b"503": b"5.5.1",
    b"421": b"4.4.2",
    b"221": b"2.0.0",
}
_SOURCE_ROUTE = re.compile(r"<\s*@")
# RFC 5321 §4.1.1.4: the data ends with a line holding a single dot.
_LAST_LINE = b".\r\n"
_END_OF_DATA = b"\r\n.\r\n"


def unstuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: drop the first dot of every line that starts with one."""
    if b"\r\n." not in data and not data.startswith(b"."):
        return data
    return (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:]


def longest_line(data: bytes) -> int:
    """The length of the longest CRLF-terminated line of `data`, its CRLF included."""
    return max(map(len, data.split(b"\r\n"))) + 2


def with_enhanced_code(line: bytes) -> bytes:
    """`line` with an enhanced status code after its reply code, unless it has one or its
    code takes none (1xx/3xx continuations, 220 greetings)."""
    if len(line) < 3 or not line[:3].isdigit() or line[:1] not in _GENERIC_DETAIL:
        return line
    if line[:3] == b"220" or _HAS_ENHANCED.match(line):
        return line
    detail = _SPECIFIC.get(line[:3], _GENERIC_DETAIL[line[:1]])
    separator, text = line[3:4] or b" ", line[4:]
    return line[:3] + separator + detail + (b" " + text if text else b"")


def _swap_stream_limit(reader: asyncio.StreamReader, limit: int) -> int:
    """Set the most `readuntil` returns (a private attribute of asyncio's StreamReader in
    3.11-3.13); returns the previous limit."""
    previous: int = reader._limit  # type: ignore[attr-defined]
    reader._limit = limit  # type: ignore[attr-defined]
    return previous


class SubmissionProtocol(SMTP):
    """aiosmtpd's SMTP with enhanced status codes, no source routes, a connection limit."""

    _in_ehlo = False

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        connections_per_address: int,
        **options: Any,
    ) -> None:
        super().__init__(handler, **options)
        self._limits = limits
        self._connections_per_address = connections_per_address
        self._counted_address: str | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this again after STARTTLS, with the TLS transport: count once.
        if self.transport is None:
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) else "unknown"
            if not self._limits.open_connection(address, self._connections_per_address):
                self._refused = True
                log.warning("event=connection_refused reason=per_address_limit peer=%s", address)
                assert isinstance(transport, asyncio.WriteTransport)  # noqa: S101 - a stream
                transport.write(replies.TOO_MANY_CONNECTIONS.encode() + b"\r\n")
                transport.close()
                return
            self._counted_address = address
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._counted_address is not None:
            self._limits.close_connection(self._counted_address)
            self._counted_address = None
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> bool | None:
        return False if self._refused else super().eof_received()

    async def push(self, status: AnyStr) -> None:
        if not self._in_ehlo:
            raw = status.encode("utf-8") if isinstance(status, str) else status
            await super().push(with_enhanced_code(raw))
            return
        await super().push(status)

    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802 - aiosmtpd dispatch name
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        if arg and _SOURCE_ROUTE.search(arg) and self.session and self.session.authenticated:
            await self.push(replies.ROUTING_REFUSED)
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        if arg and _SOURCE_ROUTE.search(arg) and self.session and self.session.authenticated:
            await self.push(replies.ROUTING_REFUSED)
            return
        await super().smtp_RCPT(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        """aiosmtpd's smtp_DATA (1.4.6) with the message read in bulk; same replies."""
        if self._decode_data or not self.data_size_limit:
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None  # noqa: S101 - set by the HELO/EHLO above
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            received = await self._read_data(self.data_size_limit)
        except asyncio.CancelledError:
            # The connection was lost during DATA (aiosmtpd cancels the handler at EOF).
            self._writer.close()
            raise
        if received is None:
            await self.push("552 Error: Too much mail data")
            self._reset_after_data()
            return
        # RFC 5321 §4.5.3.1.6: 1000 octets per line, CRLF included (aiosmtpd allows 1001).
        if received and longest_line(received) > self.line_length_limit:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._reset_after_data()
            return
        content = unstuff(received)
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._reset_after_data()
        await self.push("250 OK" if status is MISSING else status)

    def _reset_after_data(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    async def _read_data(self, size_limit: int) -> bytes | None:
        """The message up to (without) its final dot line, still dot-stuffed; None when it
        was longer than `size_limit` (read to its end all the same, RFC 5321 §4.2.5)."""
        reader = self._reader
        # Let one `readuntil` take the whole message; the buffer then holds at most one
        # message (plus a chunk), which DATA keeps in memory anyway.
        line_limit = _swap_stream_limit(reader, size_limit + len(_END_OF_DATA))
        data = bytearray()
        received = 0
        try:
            while True:
                try:
                    # Every dot-line ends in ".\r\n"; only one after a CRLF (or at the very
                    # start) ends the data.
                    chunk = await reader.readuntil(_LAST_LINE)
                except asyncio.LimitOverrunError as overrun:
                    # Too much: drop what cannot hold the end, keep looking for it.
                    chunk = await reader.readexactly(overrun.consumed)
                received += len(chunk)
                data += chunk
                if received == len(_LAST_LINE) and data == _LAST_LINE:
                    return b""
                if data.endswith(_END_OF_DATA):
                    break
                if received > size_limit + len(_LAST_LINE):
                    del data[: -len(_END_OF_DATA)]
        finally:
            _swap_stream_limit(reader, line_limit)
        if received > size_limit + len(_LAST_LINE):
            return None
        return bytes(data[: -len(_LAST_LINE)])
