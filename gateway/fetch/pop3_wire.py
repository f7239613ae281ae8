"""POP3 responses read straight off poplib's buffered socket file, streamed, and pipelined.

poplib's own `retr()` builds the whole message as a list of lines (and refuses lines over
2 KiB); here a multi-line response is read with the same buffered reader poplib uses, undone of
its dot-stuffing and handed on as ~64 KiB chunks, so memory stays bounded by the chunk size
whatever the message size. Bytes are kept exactly as received (line endings included).
"""

from __future__ import annotations

import base64
import io
import poplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

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
    """A whole multi-line response body, undone of its dot-stuffing (RFC 1939 §3).

    The same result as joining `iter_multiline`, found by searching the buffered bytes for
    the terminating "." line instead of reading line by line: a first sync of small mail
    spent most of its POP3 reading in ~80 `readline` calls per message (py-spy, issue 17).
    Only the bytes up to the terminator are consumed: the next pipelined reply stays buffered.
    """
    # poplib's `sock.makefile("rb")`: a BufferedReader, whose `peek` typeshed's BinaryIO lacks.
    reader = cast(io.BufferedReader, client.file)
    # A leading LF marks the body's first byte as a line start, for the searches below.
    received = bytearray(b"\n")
    with network_step():
        while True:
            scan_from = max(0, len(received) - 3)
            data = reader.peek(_READ_LIMIT)
            if not data:
                raise EOFError("connection closed in the middle of a response")
            received += data
            end = _terminator_end(received, scan_from)
            if end < 0:
                reader.read(len(data))
                continue
            # `end` counts the sentinel LF; consume only this response's bytes.
            reader.read(end - (len(received) - len(data)))
            del received[end:]
            break
    # Keep the LF that starts the terminator line: it ends the body's last line.
    del received[received.rindex(b"\n", 0, len(received) - 1) + 1 :]
    if b"\n." in received:
        received = received.replace(b"\n.", b"\n")
    del received[0]  # the sentinel (cheap at the front of a bytearray)
    return bytes(received)


def _terminator_end(buffer: bytearray, start: int) -> int:
    """Where the first "." line (CRLF or bare LF) after `start` ends, or -1 (a line starting
    with "." is otherwise dot-stuffed, so hits other than the end are rare)."""
    found = buffer.find(b"\n.", start)
    while found >= 0:
        after = bytes(buffer[found + 2 : found + 4])
        if after[:1] == b"\n":
            return found + 3
        if after == b"\r\n":
            return found + 4
        if after in (b"", b"\r"):
            return -1  # the line's end has not arrived: look again with more bytes
        found = buffer.find(b"\n.", found + 2)
    return -1


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
