"""A cursor over one framed command: its lines, with the literals between them (RFC 3501 §9).

The framing layer strips each literal announcement (`{n}` / `{n+}`) from the end of its line,
so "at the end of a line that is not the last one" means "at a literal". When the command is
still incomplete (a literal was just announced), reaching that literal raises `Incomplete`:
everything before it was valid, so the client may be told to send it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypeVar

from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.protocol.sequence import Bound, SequenceSet

T = TypeVar("T")

# RFC 3501 §9: number is a 32-bit unsigned integer; RFC 7162 §7: mod-sequence-value < 2^63.
MAX_NUMBER: Final = 4294967295
MAX_MODSEQ: Final = 2**63 - 1
_MAX_DIGITS: Final = 20

SP: Final = 0x20
DQUOTE: Final = 0x22
BACKSLASH: Final = 0x5C
LPAREN: Final = 0x28
RPAREN: Final = 0x29

# RFC 3501 §9: ATOM-CHAR is any CHAR except atom-specials "(" ")" "{" SP CTL "%" "*" DQUOTE
# "\" "]"; ASTRING-CHAR adds "]"; a tag is any ASTRING-CHAR except "+"; list-char (LIST
# patterns) adds the wildcards "%" and "*".
ATOM_CHARS: Final = frozenset(range(0x21, 0x7F)) - frozenset(b'(){%*"\\]')
ASTRING_CHARS: Final = ATOM_CHARS | {ord("]")}
TAG_CHARS: Final = ASTRING_CHARS - {ord("+")}
LIST_CHARS: Final = ASTRING_CHARS | {ord("%"), ord("*")}
DIGITS: Final = frozenset(b"0123456789")

# RFC 3501 §2.3.2: system flags are case-insensitive; answer with the canonical spelling.
_SYSTEM_FLAGS: Final = {
    name.upper(): name
    for name in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}


# RFC 3501 §9 quoted: QUOTED-CHAR is any TEXT-CHAR but quoted-specials, or "\" quoted-specials.
_QUOTED_BODY: Final = re.compile(rb'(?:[^"\\\r\n\x00]|\\["\\])*')
_QUOTED_ESCAPE: Final = re.compile(rb'\\(["\\])')


@functools.cache
def _run_pattern(allowed: frozenset[int]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([byte])) for byte in sorted(allowed)) + b"]*")


class ParseError(Exception):
    """The command is malformed (BAD) or refused outright (NO, e.g. TOOBIG)."""

    def __init__(
        self, reason: str, *, status: Literal["BAD", "NO"] = "BAD", code: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status: Literal["BAD", "NO"] = status
        self.code = code


class Incomplete(Exception):  # noqa: N818 - a signal, not an error
    """The command is valid so far but continues in a literal that has not arrived yet."""


class Reader:
    """Reads the tokens of one command; every `read_*` raises ParseError on bad syntax."""

    def __init__(
        self,
        lines: Sequence[bytes],
        literals: Sequence[bytes],
        *,
        pending_literal: int | None,
        string_literal_limit: int,
        message_literal_limit: int,
    ) -> None:
        self._lines = lines
        self._literals = literals
        self._pending = pending_literal
        self._index = 0
        self._position = 0
        self.string_literal_limit = string_literal_limit
        self.message_literal_limit = message_literal_limit

    # --- position -------------------------------------------------------------------------

    def peek(self) -> int | None:
        """The next byte of the current line, None at a literal or at the end."""
        line = self._lines[self._index]
        return line[self._position] if self._position < len(line) else None

    def at_literal(self) -> bool:
        return self._position == len(self._lines[self._index]) and (
            self._index < len(self._lines) - 1 or self._pending is not None
        )

    def at_end(self) -> bool:
        return (
            self._index == len(self._lines) - 1
            and self._position == len(self._lines[self._index])
            and self._pending is None
        )

    def expect_end(self) -> None:
        if self.at_literal():
            raise ParseError("unexpected literal")
        if not self.at_end():
            raise ParseError("unexpected characters at end of command")

    def skip_byte(self, value: int) -> bool:
        if self.peek() == value:
            self._position += 1
            return True
        return False

    def expect_byte(self, value: int, what: str) -> None:
        if not self.skip_byte(value):
            raise ParseError(f"expected {what}")

    def expect_space(self) -> None:
        if not self.skip_byte(SP):
            raise ParseError("missing argument" if self.at_end() else "expected space")

    def read_run(self, allowed: frozenset[int]) -> bytes:
        """The longest run of `allowed` bytes on the current line (possibly empty)."""
        line = self._lines[self._index]
        match = _run_pattern(allowed).match(line, self._position)
        assert match is not None  # noqa: S101 - a `*` pattern always matches
        self._position = match.end()
        return match.group()

    # --- atoms and numbers ----------------------------------------------------------------

    def read_atom(self, what: str = "atom") -> str:
        atom = self.read_run(ATOM_CHARS)
        if not atom:
            raise ParseError(f"expected {what}")
        return atom.decode("ascii")

    def read_keyword(self, what: str = "keyword") -> str:
        return self.read_atom(what).upper()

    def peek_keyword(self) -> str | None:
        """The upper-cased atom at the cursor, without consuming it."""
        saved = self._position
        atom = self.read_run(ATOM_CHARS)
        self._position = saved
        return atom.decode("ascii").upper() if atom else None

    def read_number(
        self, *, minimum: int = 0, maximum: int = MAX_NUMBER, what: str = "number"
    ) -> int:
        digits = self.read_run(DIGITS)
        if not digits:
            raise ParseError(f"expected {what}")
        if len(digits) > _MAX_DIGITS or not minimum <= int(digits) <= maximum:
            raise ParseError(f"{what} out of range")
        return int(digits)

    def read_nz_number(self, what: str = "number") -> int:
        """RFC 3501 §9 nz-number: 1..4294967295."""
        return self.read_number(minimum=1, what=what)

    def read_modseq(self, *, allow_zero: bool) -> int:
        """RFC 7162 §7 mod-sequence-value (1..2^63-1), or mod-sequence-valzer with 0."""
        return self.read_number(
            minimum=0 if allow_zero else 1, maximum=MAX_MODSEQ, what="mod-sequence"
        )

    # --- strings --------------------------------------------------------------------------

    def read_quoted(self) -> bytes:
        """RFC 3501 §9 quoted; 8-bit text is tolerated (RFC 6855 clients send UTF-8)."""
        self.expect_byte(DQUOTE, "quoted string")
        line = self._lines[self._index]
        match = _QUOTED_BODY.match(line, self._position)
        assert match is not None  # noqa: S101 - a `*` pattern always matches
        end = match.end()
        if end >= len(line):
            raise ParseError("unterminated quoted string")
        if line[end] != DQUOTE:
            # Only quoted-specials may be escaped; CR, LF and NUL cannot be quoted at all.
            raise ParseError(
                "bad escape in quoted string"
                if line[end] == BACKSLASH
                else "control character in quoted string"
            )
        self._position = end + 1
        return _QUOTED_ESCAPE.sub(rb"\1", match.group())

    def read_literal(self, *, limit: int | None = None) -> bytes:
        """The literal at the cursor; `limit` defaults to the limit for string literals."""
        if not self.at_literal():
            raise ParseError("expected literal")
        limit = self.string_literal_limit if limit is None else limit
        if self._index == len(self._lines) - 1:
            assert self._pending is not None  # noqa: S101 - at_literal() guarantees it
            if self._pending > limit:
                raise ParseError("literal too large", status="NO", code=ResponseCode.TOOBIG)
            raise Incomplete
        literal = self._literals[self._index]
        if len(literal) > limit:
            raise ParseError("literal too large", status="NO", code=ResponseCode.TOOBIG)
        self._index += 1
        self._position = 0
        return literal

    def read_string(self) -> bytes:
        if self.peek() == DQUOTE:
            return self.read_quoted()
        if self.at_literal():
            return self.read_literal()
        raise ParseError("expected string")

    def read_astring(self, what: str = "string") -> bytes:
        if self.peek() == DQUOTE or self.at_literal():
            return self.read_string()
        atom = self.read_run(ASTRING_CHARS)
        if not atom:
            raise ParseError(f"expected {what}")
        return atom

    def read_nstring(self) -> bytes | None:
        if self.peek() == DQUOTE or self.at_literal():
            return self.read_string()
        if self.read_keyword("string or NIL") != "NIL":
            raise ParseError("expected string or NIL")
        return None

    def read_list_mailbox(self) -> bytes:
        """RFC 3501 §9 list-mailbox: a string, or atom characters with wildcards."""
        if self.peek() == DQUOTE or self.at_literal():
            return self.read_string()
        pattern = self.read_run(LIST_CHARS)
        if not pattern:
            raise ParseError("expected mailbox pattern")
        return pattern

    # --- structures -----------------------------------------------------------------------

    def read_parenthesised(
        self, read_item: Callable[[], T], *, allow_empty: bool = False, what: str = "list"
    ) -> list[T]:
        """`"(" item *(SP item) ")"`."""
        self.expect_byte(LPAREN, f"'(' to open {what}")
        items: list[T] = []
        if self.skip_byte(RPAREN):
            if not allow_empty:
                raise ParseError(f"empty {what}")
            return items
        while True:
            items.append(read_item())
            if self.skip_byte(RPAREN):
                return items
            if not self.skip_byte(SP):
                raise ParseError(f"expected ')' to close {what}")

    def _read_sequence_bound(self, allow_star: bool) -> Bound:
        if self.skip_byte(ord("*")):
            if not allow_star:
                raise ParseError("'*' not allowed here")
            return None
        return self.read_nz_number("sequence number")

    def read_sequence_set(self, *, allow_star: bool = True) -> SequenceSet:
        """RFC 3501 §9 sequence-set: `1:4,7,9:*`."""
        ranges: list[tuple[Bound, Bound]] = []
        while True:
            first = self._read_sequence_bound(allow_star)
            last = self._read_sequence_bound(allow_star) if self.skip_byte(ord(":")) else first
            ranges.append((first, last))
            if not self.skip_byte(ord(",")):
                return SequenceSet(tuple(ranges))

    def read_flag(self) -> str:
        """RFC 3501 §9 flag: a system flag (canonical spelling), `\\extension` or a keyword."""
        if self.skip_byte(BACKSLASH):
            name = "\\" + self.read_atom("flag")
            return _SYSTEM_FLAGS.get(name.upper(), name)
        return self.read_atom("flag")

    def read_flag_list(self) -> tuple[str, ...]:
        return tuple(self.read_parenthesised(self.read_flag, allow_empty=True, what="flag list"))


def decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    """A string argument as text; NUL is refused (no client needs it, no store takes it)."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise ParseError(f"string is not valid {encoding}") from None
    if "\x00" in text:
        raise ParseError("NUL in string")
    return text
