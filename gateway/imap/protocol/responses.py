"""Encoding of response syntax (RFC 3501 §7, §9): strings, flag lists, dates, status lines.

Every helper returns bytes ready for the wire, except `sequence_set_text` which returns the
text of a sequence set for use inside response codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from gateway.imap.protocol._lexer import ASTRING_CHARS
from gateway.imap.protocol.mutf7 import encode_mailbox_name

__all__ = [
    "astring",
    "continuation",
    "flag_list",
    "internal_date",
    "mailbox_name",
    "nstring",
    "quoted",
    "sequence_set_text",
    "string",
    "tagged",
    "untagged",
]

# Longer strings go out as literals: some clients choke on very long quoted strings.
MAX_QUOTED_LENGTH: Final = 1024
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_UNQUOTABLE: Final = re.compile(rb"[\x00\r\n\x80-\xff]")
_LINE_BREAKS: Final = re.compile(r"[\x00\r\n]+")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _can_quote(data: bytes) -> bool:
    return len(data) <= MAX_QUOTED_LENGTH and _UNQUOTABLE.search(data) is None


def quoted(value: str | bytes) -> bytes:
    """RFC 3501 §9 quoted: `"..."` with `"` and `\\` escaped. Raises ValueError for text a
    quoted string cannot hold (CR, LF, NUL, 8-bit): use `string()` for arbitrary data."""
    data = _as_bytes(value)
    if _UNQUOTABLE.search(data):
        raise ValueError("CR, LF, NUL or 8-bit data cannot be quoted")
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(value: str | bytes) -> bytes:
    """RFC 3501 §4.3 literal: `{n}` CRLF and the n bytes."""
    data = _as_bytes(value)
    return b"{%d}\r\n" % len(data) + data


def string(value: str | bytes) -> bytes:
    """RFC 3501 §9 string: quoted when it can be, else a literal."""
    data = _as_bytes(value)
    return quoted(data) if _can_quote(data) else literal(data)


def nstring(value: bytes | None) -> bytes:
    """RFC 3501 §9 nstring: NIL or a string."""
    return b"NIL" if value is None else string(value)


def astring(value: str | bytes) -> bytes:
    """RFC 3501 §9 astring: a bare atom when every byte is an ASTRING-CHAR, else a string."""
    data = _as_bytes(value)
    if data and all(byte in ASTRING_CHARS for byte in data) and data.upper() != b"NIL":
        return data
    return string(data)


def mailbox_name(name: str) -> bytes:
    """A mailbox name in modified UTF-7 (RFC 3501 §5.1.3), as a quoted string."""
    return string(encode_mailbox_name(name))


def flag_list(names: Iterable[str]) -> bytes:
    """RFC 3501 §9 flag-list: `(\\Seen $Junk)`."""
    return b"(" + " ".join(names).encode("ascii") + b")"


def internal_date(moment: datetime) -> bytes:
    """RFC 3501 §9 date-time, keeping the datetime's own offset (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    minutes = round(offset.total_seconds() / 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    text = (
        f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{minutes:02d}"
    )
    return b'"' + text.encode("ascii") + b'"'


def sequence_set_text(values: Iterable[int]) -> str:
    """Sorted, de-duplicated numbers as ranges: `1:3,5` (COPYUID, VANISHED, ESEARCH)."""
    ranges: list[str] = []
    numbers = sorted(set(values))
    index = 0
    while index < len(numbers):
        first = last = numbers[index]
        while index + 1 < len(numbers) and numbers[index + 1] == last + 1:
            index += 1
            last = numbers[index]
        ranges.append(str(first) if first == last else f"{first}:{last}")
        index += 1
    return ",".join(ranges)


def _single_line(text: str) -> str:
    """Status text must stay on one line (RFC 3501 §9 text excludes CR and LF)."""
    return _LINE_BREAKS.sub(" ", text)


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """`A1 OK [code] text` CRLF (RFC 3501 §7.1)."""
    code_text = f"[{_single_line(code)}] " if code else ""
    # RFC 3501 §9 text is 1*TEXT-CHAR: never send an empty text.
    body = _single_line(text) or status.lower()
    line = f"{_single_line(tag)} {_single_line(status)} {code_text}{body}\r\n"
    return line.encode("utf-8")


def untagged(body: bytes | str) -> bytes:
    """`* body` CRLF; `body` may contain literals, so it is not sanitised."""
    return b"* " + _as_bytes(body) + b"\r\n"


def continuation(text: str) -> bytes:
    """`+ text` CRLF (RFC 3501 §7.5)."""
    return b"+ " + _single_line(text).encode("utf-8") + b"\r\n"
