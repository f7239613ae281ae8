"""A tiny IMAP server (asyncio, 127.0.0.1, port 0) for what Dovecot cannot be made to do:
stay silent after accepting, hang after its greeting, refuse LOGIN with a provider's
throttling text.

`BackgroundServer` runs an asyncio server in its own event loop in a thread (the sync under
test blocks); `tests/fetch/imap_proxy.py` builds on it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self


class BackgroundServer:
    """An asyncio server on 127.0.0.1, port 0, in a thread; subclasses implement `_session`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        # A client refusing our certificate makes asyncio log the failed handshake: expected.
        self._loop.set_exception_handler(lambda _loop, _context: None)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError, ssl.SSLError):
            await self._session(reader, writer)
        with contextlib.suppress(Exception):
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass
class FakeImapConfig:
    # None: accept the connection and never send a byte, not even a greeting.
    greeting: bytes | None = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake IMAP ready"
    hang_after_greeting: bool = False
    # What follows the tag in the reply to LOGIN (RFC 3501 §6.2.3).
    login_reply: bytes = b"OK [CAPABILITY IMAP4rev1] LOGIN completed"


class FakeImapServer(BackgroundServer):
    def __init__(self, config: FakeImapConfig) -> None:
        super().__init__()
        self.config = config
        self.connections = 0
        self.login_attempts = 0

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.connections += 1
        if self.config.greeting is None or self.config.hang_after_greeting:
            if self.config.greeting is not None:
                writer.write(self.config.greeting + b"\r\n")
                await writer.drain()
            await asyncio.sleep(3600)
            return
        writer.write(self.config.greeting + b"\r\n")
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            command = rest.split(b" ", 1)[0].upper()
            if command == b"CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif command == b"LOGIN":
                with self.lock:
                    self.login_attempts += 1
                writer.write(tag + b" " + self.config.login_reply + b"\r\n")
            elif command == b"LOGOUT":
                writer.write(b"* BYE logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
                await writer.drain()
                return
            elif command == b"NOOP":
                writer.write(tag + b" OK NOOP completed\r\n")
            else:
                writer.write(tag + b" BAD not supported by the fake server\r\n")
            await writer.drain()


@contextlib.contextmanager
def fake_imap(config: FakeImapConfig | None = None, **overrides: Any) -> Iterator[FakeImapServer]:
    """A running fake IMAP server: `fake_imap(greeting=None)` or `fake_imap(config)`."""
    with FakeImapServer(config or FakeImapConfig(**overrides)) as server:
        yield server
