"""The one small blocking IMAP client `benchmarks/imap.py` drives both servers with.

Whole responses as bytes, literals inline; parsing stops at what the benchmark counts.
"""

from __future__ import annotations

import socket

USER = "bench"
PASSWORD = "bench-password"


class ImapError(RuntimeError):
    """A command failed or the server closed the connection."""


class ImapClient:
    """Blocking IMAP client: whole responses as bytes, literals inline, no parsing beyond that.

    Kept deliberately cheap (one buffer scanned by offset) so that a 10,000-line FETCH response
    costs the client far less than it costs the server.
    """

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self._pos = 0
        self._tag = 0
        self.greeting = self.read_line()

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ImapError("connection closed by server")
        self._buffer = self._buffer[self._pos :] + chunk
        self._pos = 0

    def read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n", self._pos)
            if end >= 0:
                line = self._buffer[self._pos : end + 2]
                self._pos = end + 2
                return line
            self._fill()

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) - self._pos < size:
            self._fill()
        data = self._buffer[self._pos : self._pos + size]
        self._pos += size
        return data

    def read_response(self) -> bytes:
        """One response, with any literals it carries."""
        line = self.read_line()
        if not line.endswith(b"}\r\n"):
            return line
        parts = [line]
        while line.endswith(b"}\r\n"):
            size = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
            parts.append(self._read_exact(size))
            line = self.read_line()
            parts.append(line)
        return b"".join(parts)

    def next_tag(self) -> bytes:
        self._tag += 1
        return b"b%d" % self._tag

    def send_command(self, text: bytes, literal: bytes | None = None) -> bytes:
        """Send without waiting; a literal goes as LITERAL+ (RFC 7888), no continuation."""
        tag = self.next_tag()
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(b"%s %s {%d+}\r\n%s\r\n" % (tag, text, len(literal), literal))
        return tag

    def read_until_tagged(self, tag: bytes) -> tuple[list[bytes], bytes]:
        untagged: list[bytes] = []
        prefix = tag + b" "
        while True:
            response = self.read_response()
            if response.startswith(prefix):
                if not response.startswith(prefix + b"OK"):
                    raise ImapError(response.decode(errors="replace").strip())
                return untagged, response
            untagged.append(response)

    def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        return self.read_until_tagged(self.send_command(text, literal))[0]

    def login(self) -> None:
        self.command(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))


def fetch_count(responses: list[bytes]) -> int:
    return sum(1 for r in responses if r.startswith(b"* ") and b" FETCH (" in r[:40])


def search_count(responses: list[bytes]) -> int:
    for response in responses:
        if response.startswith(b"* SEARCH"):
            return len(response.split()) - 2
    raise ImapError("no SEARCH response")


# --- the servers -------------------------------------------------------------------------
