"""A TCP proxy in front of Dovecot (127.0.0.1, port 0, in a thread) for IMAP fault tests.

It can cut a connection a given number of server bytes after a client command (a dropped
connection mid-FETCH), terminate TLS with a chosen certificate (Dovecot here runs without
TLS), reach Dovecot from another loopback address, and count what crossed it: sessions,
LOGIN commands, message bodies sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from tests.fetch.background_server import BackgroundServer

# A full-body FETCH item in a server response ("* 3 FETCH (UID 7 BODY[] {1234}").
BODY_LITERAL = b"BODY[] {"
LOGIN_COMMAND = b" LOGIN "
CHUNK = 65536


@dataclass
class CutRule:
    """Cut the `occurrence`-th time the client sends `trigger`, `after_bytes` server bytes
    later, on at most `times` connections."""

    trigger: bytes
    after_bytes: int
    occurrence: int = 1
    times: int = 1


class _Counter:
    """Occurrences of a pattern in a stream that arrives in arbitrary pieces."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.count = 0
        self._tail = b""

    def feed(self, data: bytes) -> int:
        window = self._tail + data
        found = window.count(self.pattern)
        self.count += found
        self._tail = window[-(len(self.pattern) - 1) :]
        return found


class ImapProxy(BackgroundServer):
    def __init__(
        self,
        upstream_port: int,
        *,
        tls: ssl.SSLContext | None = None,
        cut: CutRule | None = None,
        source_address: str | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.upstream_port = upstream_port
        self.source_address = source_address
        self.cut = cut
        self.sessions = 0
        self.logins = 0
        self.bodies = 0
        self.cuts_done = 0

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.sessions += 1
        local = (self.source_address, 0) if self.source_address else None
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port, local_addr=local
        )
        armed = asyncio.Event()
        pumps = [
            asyncio.ensure_future(self._client_to_server(reader, up_writer, armed)),
            asyncio.ensure_future(self._server_to_client(up_reader, writer, armed)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for side in (writer, up_writer):
                side.transport.abort()

    async def _client_to_server(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, armed: asyncio.Event
    ) -> None:
        logins = _Counter(LOGIN_COMMAND)
        trigger = _Counter(self.cut.trigger) if self.cut else None
        while data := await reader.read(CHUNK):
            found = logins.feed(data)
            with self.lock:
                self.logins += found
            if trigger is not None and self.cut is not None:
                trigger.feed(data)
                if trigger.count >= self.cut.occurrence and not armed.is_set():
                    with self.lock:
                        if self.cuts_done < self.cut.times:
                            self.cuts_done += 1
                            armed.set()
            upstream.write(data)
            await upstream.drain()

    async def _server_to_client(
        self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter, armed: asyncio.Event
    ) -> None:
        bodies = _Counter(BODY_LITERAL)
        sent_since_armed = 0
        while data := await upstream.read(CHUNK):
            if armed.is_set() and self.cut is not None:
                room = self.cut.after_bytes - sent_since_armed
                if room <= len(data):
                    writer.write(data[: max(room, 0)])
                    await writer.drain()
                    return  # the caller aborts both sides: a connection lost mid-response
                sent_since_armed += len(data)
            found = bodies.feed(data)
            with self.lock:
                self.bodies += found
            writer.write(data)
            await writer.drain()


@contextlib.contextmanager
def imap_proxy(
    upstream_port: int,
    *,
    tls: ssl.SSLContext | None = None,
    cut: CutRule | None = None,
    source_address: str | None = None,
) -> Iterator[ImapProxy]:
    """A running proxy; `source_address` (e.g. 127.0.0.2) is what the server sees as the
    client, so Dovecot's per-IP penalty after a failed login stays with this proxy."""
    with ImapProxy(upstream_port, tls=tls, cut=cut, source_address=source_address) as proxy:
        yield proxy
