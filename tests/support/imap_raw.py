"""A tiny raw IMAP client that keeps server responses byte for byte.

imaplib reshapes responses (literals become tuples), which hides exactly the bytes we want to
compare.  This client reads whole responses, literals included, and a helper splits a FETCH
response into its items without re-encoding anything.
"""

from __future__ import annotations

import contextlib
import re
import socket
from dataclasses import dataclass

_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ImapProtocolError(RuntimeError):
    """The server answered something we could not parse or a command failed."""


@dataclass(frozen=True)
class CommandResult:
    untagged: list[bytes]  # each a full response, CRLF-terminated lines, literals inline
    tagged: bytes  # the tagged status line without CRLF


class RawImapClient:
    """Blocking IMAP client for tests: sends commands, returns raw response bytes."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""
        self._tag = 0
        self.greeting = self._read_response()

    def close(self) -> None:
        with contextlib.suppress(OSError, ImapProtocolError):
            self.command(b"LOGOUT")
        self._sock.close()

    def __enter__(self) -> RawImapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self, user: str, password: str) -> None:
        self.command(b"LOGIN " + _quote(user) + b" " + _quote(password))

    def command(self, text: bytes, check: bool = True) -> CommandResult:
        """Send one command (without tag/CRLF) and collect responses until its tagged reply."""
        self._tag += 1
        tag = b"t%d" % self._tag
        self._sock.sendall(tag + b" " + text + b"\r\n")
        untagged: list[bytes] = []
        while True:
            response = self._read_response()
            if response.startswith(tag + b" "):
                tagged = response.rstrip(b"\r\n")
                if check and not tagged.startswith(tag + b" OK"):
                    raise ImapProtocolError(tagged.decode(errors="replace"))
                return CommandResult(untagged, tagged)
            untagged.append(response)

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(1 << 20)
            if not chunk:
                raise ImapProtocolError("connection closed")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line + b"\r\n"

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._sock.recv(max(1 << 20, size - len(self._buffer)))
            if not chunk:
                raise ImapProtocolError("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_response(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._read_line()
            parts.append(line)
            match = _LITERAL_AT_END.search(line)
            if match is None:
                return b"".join(parts)
            parts.append(self._read_exact(int(match.group(1))))


def _quote(text: str) -> bytes:
    return b'"' + text.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def skip_value(data: bytes, pos: int) -> int:
    """Return the index just past the IMAP value (atom, string, literal, list) at ``pos``."""
    char = data[pos : pos + 1]
    if char == b"(":
        depth = 0
        while True:
            char = data[pos : pos + 1]
            if char == b"(":
                depth += 1
                pos += 1
            elif char == b")":
                depth -= 1
                pos += 1
                if depth == 0:
                    return pos
            elif char in (b'"', b"{"):
                pos = skip_value(data, pos)
            elif char == b"":
                raise ImapProtocolError("unterminated list")
            else:
                pos += 1
    if char == b'"':
        pos += 1
        while data[pos : pos + 1] != b'"':
            pos += 2 if data[pos : pos + 1] == b"\\" else 1
            if pos >= len(data):
                raise ImapProtocolError("unterminated quoted string")
        return pos + 1
    if char == b"{":
        end = data.index(b"}", pos)
        size = int(data[pos + 1 : end].rstrip(b"+"))
        return end + 3 + size
    while pos < len(data) and data[pos : pos + 1] not in (b" ", b")", b"\r"):
        pos += 1
    return pos


_FETCH_START = re.compile(rb"^\* (\d+) FETCH \(")


def parse_fetch(response: bytes) -> tuple[int, dict[str, bytes]]:
    """Split ``* N FETCH (NAME value ...)`` into N and {NAME: raw value bytes}."""
    match = _FETCH_START.match(response)
    if match is None:
        raise ImapProtocolError(f"not a FETCH response: {response[:80]!r}")
    pos = match.end()
    items: dict[str, bytes] = {}
    while response[pos : pos + 1] != b")":
        name_end = pos
        while response[name_end : name_end + 1] not in (b" ",):
            # section names like BODY[HEADER] contain no spaces until the closing bracket
            if response[name_end : name_end + 1] == b"[":
                name_end = response.index(b"]", name_end)
            name_end += 1
        name = response[pos:name_end].decode()
        value_end = skip_value(response, name_end + 1)
        items[name] = response[name_end + 1 : value_end]
        pos = value_end
        if response[pos : pos + 1] == b" ":
            pos += 1
    return int(match.group(1)), items
