"""The sans-IO IMAP command parser (h11 style): bytes in, command events out.

Framing follows RFC 3501 §2.2 and §7.5: a command is a line, unless that line ends with a
literal announcement `{n}` (or RFC 7888 `{n+}`), in which case n bytes of literal and then
another line follow, and so on. A synchronising literal is first checked as far as the
command goes, and only then announced to the session as a LiteralContinuation.
"""

from __future__ import annotations

from typing import Final, TypeVar

from gateway.imap.protocol._command_table import parse_command, read_tag
from gateway.imap.protocol._lexer import TAG_CHARS, Incomplete, ParseError, Reader
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.protocol.commands import Command
from gateway.imap.protocol.events import NEED_DATA, CommandError, LiteralContinuation, NeedData

__all__ = ["NEED_DATA", "CommandError", "CommandParser", "LiteralContinuation", "NeedData"]

_EventT = TypeVar("_EventT", Command, CommandError, Command | CommandError)

# At most this many literals in one command (LOGIN needs 2, a long SEARCH a handful).
MAX_LITERALS_PER_COMMAND: Final = 64
# Each literal announcement re-parses the command so far; this many times max_line_length
# bytes of such re-parsing per command stops a quadratic blow-up (real clients use a
# fraction of it: their lines between literals are short).
VALIDATION_BUDGET_LINES: Final = 8
_MAX_LITERAL_DIGITS: Final = 20
_UNLIMITED: Final = 2**64


def _literal_announcement(line: bytes) -> tuple[int, int, bool] | None:
    """`(start, size, synchronising)` when the line ends with `{n}` or `{n+}`."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    inner = line[start + 1 : -1]
    synchronising = not inner.endswith(b"+")
    digits = inner if synchronising else inner[:-1]
    if not digits or not digits.isdigit():
        return None
    size = int(digits) if len(digits) <= _MAX_LITERAL_DIGITS else _UNLIMITED
    return start, size, synchronising


def _leading_tag(data: bytes | bytearray) -> str | None:
    """The tag at the start of a (possibly partial) line, for errors about the whole line."""
    end = 0
    while end < len(data) and data[end] in TAG_CHARS:
        end += 1
    if end == 0 or end >= len(data) or data[end] != 0x20:
        return None
    return bytes(data[:end]).decode("ascii")


class CommandParser:
    """Turns the bytes a client sends into Command events.

    Call `receive_data()` with whatever arrived, then `next_event()` until it returns
    NEED_DATA. Nothing here raises on bad input: malformed commands become CommandError.
    """

    def __init__(
        self, *, max_line_length: int = 65536, max_literal_size: int = 50 * 1024 * 1024
    ) -> None:
        self._max_line_length = max_line_length
        self._max_literal_size = max_literal_size
        self._buffer = bytearray()
        self._scanned = 0  # leading buffer bytes known to hold no LF (no rescans when dribbled)
        # The command being framed: its lines (announcements stripped) and literals so far.
        self._lines: list[bytes] = []
        self._literals: list[bytes] = []
        self._command_size = 0
        self._tag: str | None = None
        self._literal_expected: int | None = None  # a literal to collect
        self._skip_bytes = 0  # a literal to swallow unbuffered
        self._skip_line = False  # discarding up to the next LF
        self._error: CommandError | None = None  # reported when the bad command ends
        self._validation_work = 0  # bytes re-parsed at literal announcements so far

    # --- public API -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client; they are only looked at by `next_event()`."""
        self._buffer += data

    def set_max_literal_size(self, size: int) -> None:
        """Change the largest literal accepted (RFC 7889 APPENDLIMIT) from now on."""
        self._max_literal_size = size

    @property
    def buffered_size(self) -> int:
        """Bytes held: unread input plus the command being framed."""
        return len(self._buffer) + sum(map(len, self._lines)) + sum(map(len, self._literals))

    def drain_buffer(self) -> bytes:
        """Take the unread input; after STARTTLS it must be dropped (RFC 3501 §6.2.1,
        injection), after COMPRESS it is compressed and must be re-fed (RFC 4978 §3)."""
        data = bytes(self._buffer)
        self._consume(len(data))
        return data

    def next_line(self) -> bytes | NeedData:
        """The next raw line without its CRLF (or bare LF), for AUTHENTICATE continuation
        responses (RFC 3501 §6.2.2) and IDLE's DONE (RFC 2177).

        Only valid between commands. A line longer than max_line_length is returned cut to
        that length, and the rest of it is dropped as it arrives.
        """
        if self._in_command():
            raise RuntimeError("next_line() in the middle of a command")
        if self._skip_line and not self._skip_to_line_end():
            return NEED_DATA
        end = self._find_newline(self._max_line_length + 2)
        if end < 0:
            if len(self._buffer) < self._max_line_length + 2:
                return NEED_DATA
            line = bytes(self._buffer[: self._max_line_length])
            self._consume(len(self._buffer))
            self._skip_line = True
            return line
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        self._consume(end + 1)
        return line[: self._max_line_length]

    def next_event(self) -> Command | LiteralContinuation | CommandError | NeedData:
        """The next event, or NEED_DATA when the buffered bytes do not complete one."""
        while True:
            if self._skip_bytes:
                # Swallowing a literal of a rejected command (RFC 7888 §4) without keeping it.
                skipped = min(self._skip_bytes, len(self._buffer))
                self._consume(skipped)
                self._skip_bytes -= skipped
                if self._skip_bytes:
                    return NEED_DATA
                continue
            if self._literal_expected is not None:
                if len(self._buffer) < self._literal_expected:
                    return NEED_DATA
                self._literals.append(bytes(self._buffer[: self._literal_expected]))
                self._consume(self._literal_expected)
                self._literal_expected = None
                continue
            if self._skip_line:
                if not self._skip_to_line_end():
                    return NEED_DATA
                if self._error is not None:
                    return self._finish_with(self._error)
                continue
            line = self._take_line()
            if line is None:
                if self._skip_line:
                    continue
                return NEED_DATA
            event = self._handle_line(line)
            if event is not None:
                return event

    # --- framing --------------------------------------------------------------------------

    def _in_command(self) -> bool:
        return bool(
            self._lines
            or self._error is not None
            or self._skip_bytes
            or self._literal_expected is not None
        )

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self._scanned = 0

    def _find_newline(self, limit: int) -> int:
        """Index of the first LF within `limit` bytes, or -1; each byte is scanned once."""
        end = self._buffer.find(b"\n", self._scanned, limit)
        self._scanned = 0 if end >= 0 else min(len(self._buffer), limit)
        return end

    def _skip_to_line_end(self) -> bool:
        end = self._buffer.find(b"\n")
        if end < 0:
            self._consume(len(self._buffer))
            return False
        self._consume(end + 1)
        self._skip_line = False
        return True

    def _take_line(self) -> bytes | None:
        """The next complete line without its line ending; None when it has not arrived.

        An overlong line becomes the command's error, and is dropped up to its LF.
        """
        limit = self._max_line_length
        end = self._find_newline(limit + 2)
        if end < 0 and len(self._buffer) < limit + 2:
            return None
        line = None if end < 0 else bytes(self._buffer[:end]).removesuffix(b"\r")
        if line is not None and len(line) <= limit:
            self._consume(end + 1)
            return line
        if self._error is None:
            tag = self._tag if self._lines else _leading_tag(self._buffer[:limit])
            self._error = CommandError(tag, "BAD", "line too long")
        self._skip_line = True  # the error is reported once the LF has been seen
        return None

    def _handle_line(self, line: bytes) -> Command | LiteralContinuation | CommandError | None:
        if self._error is not None:
            # Discarding a bad command: swallow its non-synchronising literals; a line
            # without one (or with a synchronising one, never sent) ends it.
            announcement = _literal_announcement(line)
            if announcement is not None and not announcement[2]:
                self._skip_bytes = announcement[1]
                return None
            return self._finish_with(self._error)
        if not self._lines:
            self._tag = _leading_tag(line)
        if b"\x00" in line:
            nul_error = CommandError(self._tag, "BAD", "NUL byte in command")
            return self._fail(nul_error, _literal_announcement(line))
        announcement = _literal_announcement(line)
        self._command_size += len(line)
        if announcement is None:
            self._lines.append(line)
            result = self._parse(pending_literal=None)
            if result is None:  # cannot happen without a pending literal; keep the type honest
                result = CommandError(self._tag, "BAD", "incomplete command")
            return self._finish_with(result)
        start, size, synchronising = announcement
        self._lines.append(line[:start])
        # The command must be valid up to the literal before the client may send it.
        self._validation_work += self._command_size  # what the parse below reads again
        if self._validation_work > VALIDATION_BUDGET_LINES * self._max_line_length:
            return self._fail(CommandError(self._tag, "BAD", "command too complex"), announcement)
        parsed = self._parse(pending_literal=size)
        error = parsed if isinstance(parsed, CommandError) else self._check_literal(size)
        if error is not None:
            return self._fail(error, announcement)
        self._literal_expected = size
        self._command_size += size
        if synchronising:
            assert self._tag is not None  # noqa: S101 - the parse above validated the tag
            return LiteralContinuation(self._tag, size)
        return None

    def _check_literal(self, size: int) -> CommandError | None:
        if len(self._literals) + 1 > MAX_LITERALS_PER_COMMAND:
            return CommandError(self._tag, "BAD", "too many literals in command")
        too_big = size > self._max_literal_size or (
            self._command_size + size > self._max_literal_size + self._max_line_length
        )
        if too_big:
            # RFC 7889 §4 / RFC 7888 §4: refuse an oversized literal with [TOOBIG].
            return CommandError(self._tag, "NO", "literal too large", code=ResponseCode.TOOBIG)
        return None

    def _fail(
        self, error: CommandError, announcement: tuple[int, int, bool] | None
    ) -> CommandError | None:
        """Reject the command; a non-synchronising literal still has to be swallowed."""
        if announcement is not None and not announcement[2]:
            self._error = error
            self._skip_bytes = announcement[1]
            self._lines.clear()
            self._literals.clear()
            self._command_size = 0
            return None
        # A synchronising literal is never sent once we answer instead of "+" (RFC 3501 §7.5).
        return self._finish_with(error)

    def _finish_with(self, event: _EventT) -> _EventT:
        """End the current command (successfully or not) and return its event."""
        self._lines.clear()
        self._literals.clear()
        self._command_size = 0
        self._validation_work = 0
        self._tag = None
        self._error = None
        return event

    def _parse(self, *, pending_literal: int | None) -> Command | CommandError | None:
        """The command so far; None when it is valid up to a literal still to come."""
        reader = Reader(
            self._lines,
            self._literals,
            pending_literal=pending_literal,
            string_literal_limit=self._max_line_length,
            message_literal_limit=self._max_literal_size,
        )
        try:
            tag = read_tag(reader)
        except (ParseError, Incomplete):
            return CommandError(None, "BAD", "missing or invalid tag")
        self._tag = tag
        try:
            command = parse_command(reader, tag)
        except Incomplete:
            return None
        except ParseError as error:
            return CommandError(tag, error.status, error.reason, error.code)
        if pending_literal is not None:
            return CommandError(tag, "BAD", "unexpected literal")
        return command
