"""One TCP connection: bytes from the socket into the parser, commands into the session.

Owns the transport concerns the session must not know about: timeouts, STARTTLS, COMPRESS
(RFC 4978 raw DEFLATE both ways), literal continuations and malformed-input accounting.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
import zlib

from gateway.imap.context import ServerContext
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.protocol.commands import Command
from gateway.imap.protocol.events import CommandError, LiteralContinuation
from gateway.imap.protocol.parser import NEED_DATA, CommandParser
from gateway.imap.session import ImapSession
from gateway.imap.session_base import State, log

READ_SIZE = 65536
# Gathered responses go out once they reach this size, even before the command ends.
OUTGOING_FLUSH_BYTES = 256 * 1024
# RFC 4978 §4: inflate one raw read's worth at a time, and only when the parser needs more,
# so 12 KB of DEFLATE (a million NOOPs) is buffered no more than 12 MB of plain input is.
MAX_INFLATE_STEP = READ_SIZE
# A connection with many pipelined commands gives the other connections a turn after this
# much time: fairness is a property of the code (1,048,576 compressed NOOPs ran for 63 s).
YIELD_AFTER_SECONDS = 0.005
# Dovecot's choice too: a client that only sends garbage is cut off eventually.
MAX_CONSECUTIVE_ERRORS = 20
_session_numbers = itertools.count(1)


class ConnectionClosedError(Exception):
    """The peer went away or timed out; nothing more to write."""


class ImapConnection:
    def __init__(
        self,
        context: ServerContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        implicit_tls: bool,
        peer: str,
    ) -> None:
        self.context = context
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self._tls_active = implicit_tls
        self._deflate: zlib._Compress | None = None
        # Whether the deflater holds input not yet flushed to the peer.
        self._deflate_pending = False
        self._inflate: zlib._Decompress | None = None
        # Whether inflating again, without reading the socket, may give more input.
        self._inflate_more = False
        self.parser = CommandParser(max_literal_size=context.settings.max_message_size)
        self.session_id = f"{next(_session_numbers):x}"
        self.session = ImapSession(context, self, peer=peer, session_id=self.session_id)
        self._eof = False
        # A peer that stopped reading: its connection is dropped, not flushed (see drain).
        self._stalled = False
        self._outgoing: list[bytes] = []
        self._outgoing_size = 0

    # --- Channel protocol ----------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def compression_active(self) -> bool:
        return self._deflate is not None

    def write(self, data: bytes) -> None:
        # Responses are gathered and sent in one go at `drain`: a command's untagged lines
        # and tagged OK leave in one send() rather than one system call each.
        if self._deflate is not None:
            self._deflate_pending = self._deflate_pending or bool(data)
            data = self._deflate.compress(data)
        if data:
            self._outgoing.append(data)
            self._outgoing_size += len(data)
            if self._outgoing_size >= OUTGOING_FLUSH_BYTES:
                self._send_outgoing()

    def _send_outgoing(self) -> None:
        if self._outgoing:
            self.writer.write(b"".join(self._outgoing))
            self._outgoing.clear()
            self._outgoing_size = 0

    async def drain(self) -> None:
        self._flush_deflate()
        self._send_outgoing()
        transport = self.writer.transport
        if transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1]:
            await self.writer.drain()  # not paused: returns at once
            return
        # The idle timeout covers reads only; a client that never reads what it asked for
        # must not hold its connection and its unsent output forever.
        try:
            async with asyncio.timeout(self.context.settings.imap_write_timeout_seconds):
                await self.writer.drain()
        except TimeoutError:
            self._stalled = True
            log.info("event=imap_write_timeout session=%s peer=%s", self.session_id, self.peer)
            raise ConnectionClosedError from None

    def _flush_deflate(self) -> None:
        # Flush only what was written: an empty sync flush right after the tagged OK of
        # COMPRESS is five bytes (NULs included) that a client still reading plain text
        # takes as a response line (mbsync: "IMAP error: empty response").
        if self._deflate is not None and self._deflate_pending:
            self._deflate_pending = False
            self._outgoing.append(self._deflate.flush(zlib.Z_SYNC_FLUSH))

    async def read_line(self) -> bytes | None:
        while True:
            line = self.parser.next_line()
            if line is not NEED_DATA:
                assert isinstance(line, bytes)  # noqa: S101
                return line
            if not await self._receive():
                return None

    async def start_tls(self) -> None:
        assert self.context.tls_context is not None  # noqa: S101
        # Anything the client pipelined after STARTTLS arrived in the clear: drop it
        # (the STARTTLS command-injection attack, CVE-2011-0411 class).
        self.parser.drain_buffer()
        await self.writer.start_tls(self.context.tls_context)
        self._tls_active = True

    def start_compression(self) -> None:
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        # Bytes the client sent right after COMPRESS are already compressed (RFC 4978 §3).
        pipelined = self.parser.drain_buffer()
        if pipelined:
            self._inflate_step(pipelined)

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.write(
                responses.untagged(f"OK [{self.session.capability_code()}] mail-gateway ready")
            )
            await self.drain()
            errors = 0
            loop = asyncio.get_running_loop()
            turn_started = loop.time()
            while self.session.state is not State.LOGOUT:
                if loop.time() - turn_started > YIELD_AFTER_SECONDS:
                    await asyncio.sleep(0)
                    turn_started = loop.time()
                event = self.parser.next_event()
                if event is NEED_DATA:
                    await self.drain()
                    if not await self._receive():
                        return
                    continue
                if isinstance(event, LiteralContinuation):
                    self.write(responses.continuation("Ready for literal data"))
                    await self.drain()
                    continue
                if isinstance(event, CommandError):
                    errors += 1
                    self.write(self._error_response(event))
                    if errors >= MAX_CONSECUTIVE_ERRORS:
                        self.write(responses.untagged("BYE Too many invalid commands"))
                        return
                    continue
                assert isinstance(event, Command)  # noqa: S101
                errors = 0
                await self._run_command(event)
        except ConnectionClosedError:
            return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            log.info("event=imap_connection_lost session=%s error=%r", self.session_id, error)
        finally:
            self.session.close()
            await self._close()

    async def _run_command(self, command: Command) -> None:
        started = time.perf_counter()
        try:
            await self.session.handle(command)
        except (ConnectionClosedError, ConnectionError, ssl.SSLError):
            raise
        except Exception:
            # The one place an unexpected error becomes a response; the session survives.
            log.exception(
                "event=imap_command_failed session=%s command=%s",
                self.session_id,
                type(command).__name__,
            )
            self.write(
                responses.tagged(command.tag, "NO", "internal server error", ResponseCode.SERVERBUG)
            )
        observer = self.context.command_observer
        if observer is not None:
            observer(type(command).__name__, time.perf_counter() - started)
        await self.drain()

    def _error_response(self, error: CommandError) -> bytes:
        if error.tag is None:
            return responses.untagged(f"BAD {error.text}")
        return responses.tagged(error.tag, error.status, error.text, error.code)

    async def _receive(self) -> bool:
        """Read more bytes into the parser; False at EOF, ConnectionClosedError on timeout."""
        if self._eof:
            return False
        if self._inflate_more:
            self._inflate_step(b"")  # more of what was read before; no socket read
            return True
        settings = self.context.settings
        timeout = (
            settings.imap_autologout_seconds
            if self.session.user is not None
            else settings.imap_login_timeout_seconds
        )
        try:
            # asyncio.timeout, not wait_for: no extra task per read on the hot path.
            async with asyncio.timeout(timeout):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            self.write(responses.untagged("BYE Autologout; idle for too long"))
            await self.drain()
            raise ConnectionClosedError from None
        if not data:
            self._eof = True
            return False
        if self._inflate is not None:
            self._inflate_step(data)
        else:
            self.parser.receive_data(data)
        return True

    def _inflate_step(self, data: bytes) -> None:
        """Inflate at most MAX_INFLATE_STEP bytes of `data` (or, when empty, of the input
        left over from the previous step) into the parser."""
        assert self._inflate is not None  # noqa: S101
        try:
            chunk = self._inflate.decompress(
                data or self._inflate.unconsumed_tail, MAX_INFLATE_STEP
            )
        except zlib.error as error:
            raise ConnectionClosedError(f"bad DEFLATE stream: {error}") from error
        # A full step may have left output inside zlib even with all input consumed.
        self._inflate_more = bool(self._inflate.unconsumed_tail) or len(chunk) == MAX_INFLATE_STEP
        self.parser.receive_data(chunk)

    async def _close(self) -> None:
        if self._stalled:
            self.writer.transport.abort()  # its unsent output goes with it
            return
        try:
            if not self.writer.is_closing():
                self._flush_deflate()
                self._send_outgoing()
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            pass
