"""A tiny POP3 server (asyncio, 127.0.0.1, port 0) for what Dovecot cannot be made to do:
no UIDL, TLS with a chosen certificate, hanging after the greeting, dropping a RETR half-way.

Built on `background_server.BackgroundServer`, since the sync under test blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.fetch.background_server import BackgroundServer


@dataclass
class FakePop3Config:
    messages: list[bytes] = field(default_factory=list)
    user: str = "user"
    password: str = "pass"
    uidl: bool = True
    pipelining: bool = True
    implicit_tls: ssl.SSLContext | None = None
    stls: ssl.SSLContext | None = None
    hang_after_greeting: bool = False
    # Close the connection after sending this many bytes of the nth RETR (1-based), once.
    drop_retr: tuple[int, int] | None = None


def _stuff(message: bytes) -> bytes:
    """RFC 1939 §3 byte-stuffing and termination of a multi-line response."""
    lines = message.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    body = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return body + b".\r\n"


class FakePop3Server(BackgroundServer):
    def __init__(self, config: FakePop3Config) -> None:
        super().__init__(tls=config.implicit_tls)
        self.config = config
        self.messages: list[bytes | None] = list(config.messages)
        self.retr_count = 0
        self.logins = 0
        self._dropped = False

    def remaining(self) -> list[bytes]:
        with self.lock:
            return [m for m in self.messages if m is not None]

    def add(self, message: bytes) -> None:
        with self.lock:
            self.messages.append(message)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = self.config
        writer.write(b"+OK fake POP3 ready\r\n")
        await writer.drain()
        if config.hang_after_greeting:
            await asyncio.sleep(3600)
        authed = False
        user_given = False
        deleted: set[int] = set()
        with self.lock:
            snapshot = list(enumerate(self.messages, 1))
        visible = {n: m for n, m in snapshot if m is not None}
        while True:
            line = await reader.readline()
            if not line:
                return
            verb, *args = line.decode().strip().split(" ")
            verb = verb.upper()
            if verb == "CAPA":
                caps = ["USER", "TOP"] + (["UIDL"] if config.uidl else [])
                caps += ["PIPELINING"] if config.pipelining else []
                caps += ["STLS"] if config.stls and not authed else []
                writer.write(b"+OK\r\n" + "".join(c + "\r\n" for c in caps).encode() + b".\r\n")
            elif verb == "STLS" and config.stls is not None:
                writer.write(b"+OK begin TLS\r\n")
                await writer.drain()
                await writer.start_tls(config.stls)
            elif verb == "USER":
                user_given = args == [config.user]
                writer.write(b"+OK\r\n")
            elif verb == "PASS":
                if user_given and args == [config.password]:
                    authed = True
                    self.logins += 1
                    writer.write(b"+OK logged in\r\n")
                else:
                    writer.write(b"-ERR [AUTH] Authentication failed.\r\n")
            elif not authed:
                writer.write(b"-ERR not logged in\r\n")
            elif verb == "STAT":
                live = [m for n, m in visible.items() if n not in deleted]
                writer.write(f"+OK {len(live)} {sum(map(len, live))}\r\n".encode())
            elif verb == "LIST":
                rows = "".join(f"{n} {len(m)}\r\n" for n, m in visible.items() if n not in deleted)
                writer.write(b"+OK\r\n" + rows.encode() + b".\r\n")
            elif verb == "UIDL" and config.uidl:
                rows = "".join(f"{n} uid-{n}\r\n" for n in visible if n not in deleted)
                writer.write(b"+OK\r\n" + rows.encode() + b".\r\n")
            elif verb == "TOP":
                number = int(args[0])
                message = visible.get(number)
                if message is None or number in deleted:
                    writer.write(b"-ERR no such message\r\n")
                else:
                    head = message.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                    writer.write(b"+OK\r\n" + _stuff(head))
            elif verb == "RETR":
                number = int(args[0])
                message = visible.get(number)
                if message is None or number in deleted:
                    writer.write(b"-ERR no such message\r\n")
                    continue
                self.retr_count += 1
                data = b"+OK\r\n" + _stuff(message)
                drop = config.drop_retr
                if drop and not self._dropped and self.retr_count == drop[0]:
                    self._dropped = True
                    writer.write(data[: drop[1]])
                    await writer.drain()
                    writer.transport.abort()
                    return
                writer.write(data)
            elif verb == "DELE":
                deleted.add(int(args[0]))
                writer.write(b"+OK deleted\r\n")
            elif verb == "NOOP":
                writer.write(b"+OK\r\n")
            elif verb == "QUIT":
                with self.lock:
                    for number in deleted:
                        self.messages[number - 1] = None
                writer.write(b"+OK bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"-ERR unknown command\r\n")
            await writer.drain()


@contextlib.contextmanager
def fake_pop3(config: FakePop3Config) -> Iterator[FakePop3Server]:
    with FakePop3Server(config) as server:
        yield server
