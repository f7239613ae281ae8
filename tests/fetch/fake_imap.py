"""A tiny IMAP server (asyncio, 127.0.0.1, port 0) for what Dovecot cannot be made to do:
stay silent after accepting, hang after its greeting, refuse LOGIN with a provider's
throttling text.

Built on `background_server.BackgroundServer` (the sync under test blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.fetch.background_server import BackgroundServer


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
