"""POP3 responses read straight off poplib's buffered socket file, streamed, and pipelined.

poplib's own `retr()` builds the whole message as a list of lines (and refuses lines over
2 KiB); here a multi-line response is read with the same buffered reader poplib uses, undone of
its dot-stuffing and handed on as ~64 KiB chunks, so memory stays bounded by the chunk size
whatever the message size. Bytes are kept exactly as received (line endings included).
"""

from __future__ import annotations

import base64
import poplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from gateway.fetch.errors import SyncError, classify_error

CHUNK_SIZE = 64 * 1024
_STATUS_LIMIT = 4096
_READ_LIMIT = 64 * 1024
_NETWORK_ERRORS = (OSError, EOFError, poplib.error_proto, ssl.SSLError)


@contextmanager
def network_step() -> Iterator[None]:
    """Turn what the connection raises into a classified `SyncError` (store errors pass)."""
    try:
        yield
    except SyncError:
        raise
    except _NETWORK_ERRORS as error:
        raise classify_error(error) from None


def read_status(client: poplib.POP3) -> bytes:
    """One status line; `-ERR` raises `poplib.error_proto` with the server's text."""
    line = client.file.readline(_STATUS_LIMIT)
    if not line:
        raise EOFError("connection closed")
    if not line.endswith(b"\n"):
        raise poplib.error_proto(b"status line too long")
    if not line.startswith(b"+"):
        raise poplib.error_proto(line.rstrip(b"\r\n"))
    return line.rstrip(b"\r\n")


def iter_multiline(client: poplib.POP3, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The body of a multi-line response up to its terminating "." line, as chunks.

    RFC 1939 §3: a line starting with "." has it doubled by the server; "." alone ends the
    response. Lines longer than the read limit arrive in pieces and are only unstuffed at
    their real start. The caller must consume the whole iterator before the next response.
    """
    reader = client.file
    buffer = bytearray()
    at_line_start = True
    with network_step():
        while True:
            line = reader.readline(_READ_LIMIT)
            if not line:
                raise EOFError("connection closed in the middle of a response")
            if at_line_start and line[:1] == b".":
                if line in (b".\r\n", b".\n"):
                    break
                line = line[1:]
            at_line_start = line.endswith(b"\n")
            buffer += line
            if len(buffer) >= chunk_size:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


def read_multiline(client: poplib.POP3) -> bytes:
    return b"".join(iter_multiline(client))


def skip_multiline(client: poplib.POP3) -> None:
    for _chunk in iter_multiline(client):
        pass


@dataclass(frozen=True)
class Reply:
    """The status line of one pipelined command; a `+OK` multi-line body follows it unread."""

    index: int
    ok: bool
    status: bytes


def pipelined(client: poplib.POP3, commands: Sequence[bytes], *, depth: int) -> Iterator[Reply]:
    """Send `commands` keeping up to `depth` in flight (RFC 2449 §6.6 PIPELINING); yield
    each status line in order. After an ok reply to a multi-line command the caller reads its
    body (`iter_multiline`) before asking for the next reply.
    """
    sent = 0
    refill = max(1, depth // 2)
    for index in range(len(commands)):
        if sent - index < refill:
            end = min(len(commands), index + depth)
            if end > sent:
                with network_step():
                    client.sock.sendall(b"".join(commands[sent:end]))
                sent = end
        with network_step():
            try:
                status = read_status(client)
            except poplib.error_proto as error:
                text = error.args[0] if error.args else b""
                if not isinstance(text, bytes) or not text.startswith(b"-ERR"):
                    raise
                yield Reply(index, False, text)
                continue
        yield Reply(index, True, status)


def command(verb: str, *args: int | str) -> bytes:
    """One command line; arguments are numbers or server-given tokens (no CR/LF possible)."""
    line = " ".join([verb, *(str(arg) for arg in args)])
    if "\r" in line or "\n" in line:
        raise SyncError("protocol", "refusing to send a command with a line break")
    return line.encode("ascii") + b"\r\n"


def sasl_login(client: poplib.POP3, mechanism: str, response: bytes) -> None:
    """RFC 5034 §4: AUTH with an initial response. A `+ ` challenge instead of `+OK` is the
    server's error report (RFC 7628 §3.2.3); an empty line acknowledges it and the `-ERR`
    follows, raised as `poplib.error_proto`."""
    client.sock.sendall(command("AUTH", mechanism, base64.b64encode(response).decode("ascii")))
    status = read_status(client)
    if not status.startswith(b"+OK"):
        client.sock.sendall(b"\r\n")
        read_status(client)
        raise poplib.error_proto(b"-ERR [AUTH] the server accepted an unfinished exchange")
