"""BODY[section]<partial> (RFC 3501 §6.4.5) from a message's part offsets, as Dovecot 2.3 answers.

Sans-IO: the caller passes the message's `PartSpan`s and a `read_range(start, end)` over the
raw bytes, so a `BODY[2]` of a 25 MB message reads only part 2 (and a partial only its slice).

Dovecot 2.3.19 behaviour reproduced here (checked by tests/system/test_fetch_vs_dovecot.py):

- A part that does not exist, and HEADER/TEXT/HEADER.FIELDS of a part that is not
  message/rfc822, is an empty string (sent as the literal `{0}`), never NIL.
- Part lookup (imap-msgpart.c `imap_msgpart_find`): a non-multipart part accepts the number 1
  once more, so `BODY[1.1]` of a leaf inside a multipart is that leaf; a message/rfc822 part
  followed by more numbers descends into the embedded message; `n.MIME` of a message/rfc822
  part is its own MIME header.
- HEADER.FIELDS[.NOT]: field names match case-insensitively, continuation lines follow their
  field, every emitted line ends in CRLF; HEADER.FIELDS always ends with the blank line,
  HEADER.FIELDS.NOT only when the header had one.
- A header with an empty body right before a boundary ends without its last line end (it
  belongs to the boundary), but HEADER.FIELDS[.NOT] still sees the blank line.
- A partial whose origin is past the end gives an empty string.
- NUL octets become 0x80: RFC 3501 §4.3 forbids NUL in a literal, and Dovecot does the same.

One deliberate difference: Dovecot serves a bare-LF message (Maildir file, or APPEND stored
with LF) with every LF turned into CRLF and sizes counted that way. We store bytes exactly and
serve them exactly, so BODY[] equals the stored message and RFC822.SIZE and partial offsets all
count the same raw octets. Only HEADER.FIELDS, which is built rather than copied, uses CRLF.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.imap.protocol.fetch_items import Section
from gateway.mime.model import PartSpan

# read_range(start, end) -> the raw message bytes [start, end).
ReadRange = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class _Part:
    """A part as Dovecot's message_part tree sees it: header and body ranges, and where its
    children are numbered in our sections ("" for the root)."""

    section: str
    header_start: int
    body_start: int
    end: int
    is_multipart: bool
    is_message: bool
    message_body_start: int


class MessageParts:
    """The addressable parts of one message, looked up the way Dovecot does."""

    def __init__(self, spans: Sequence[PartSpan], size: int) -> None:
        self._spans = {span.section: span for span in spans}
        self.size = size

    def _part(self, section: str) -> _Part | None:
        span = self._spans.get(section)
        if span is None:
            return None
        # A header cut short by a boundary has no blank line: the CRLF before the boundary
        # belongs to the boundary (RFC 2046 §5.1.1), and the analyser then records a body
        # start past the part's end. The header ends where the part does.
        body_start = min(span.body_start, span.end)
        message_body_start = span.message_body_start
        return _Part(
            section=section,
            header_start=span.header_start,
            body_start=body_start,
            end=span.end,
            is_multipart=span.is_multipart,
            is_message=span.is_message,
            message_body_start=(
                span.end
                if message_body_start is None
                else max(body_start, min(message_body_start, span.end))
            ),
        )

    def root(self) -> _Part:
        root = self._part("")
        if root is None:  # an analyser always records the root; be safe with odd rows
            return _Part("", 0, self.size, self.size, False, False, self.size)
        return root

    def _child(self, part: _Part, number: int) -> _Part | None:
        # Dovecot counts children from 1 but takes 0 as the first child too.
        index = max(number, 1)
        return self._part(f"{part.section}.{index}" if part.section else str(index))

    def _embedded(self, part: _Part) -> _Part:
        """The message inside a message/rfc822 part (the root's parts are numbered from 1)."""
        prefix = part.section or "1"
        first = self._spans.get(prefix + ".1")
        if first is not None and first.header_start == part.body_start:
            found = self._part(prefix + ".1")
            if found is not None:
                return found
        # A multipart embedded message has no section of its own: its children are prefix.n.
        return _Part(
            section=prefix,
            header_start=part.body_start,
            body_start=part.message_body_start,
            end=part.end,
            is_multipart=True,
            is_message=False,
            message_body_start=part.end,
        )

    def find(self, numbers: Sequence[int]) -> _Part | None:
        """The part `1.2.3` names, or None (imap-msgpart.c `imap_msgpart_find`)."""
        part: _Part | None = self.root()
        last = len(numbers) - 1
        for position, number in enumerate(numbers):
            if part is None:
                return None
            more = position < last
            if part.is_multipart:
                part = self._child(part, number)
            elif number != 1 or (more and not part.is_message):
                # only 1 is allowed below a non-multipart part, and only a message/rfc822
                # part can have more numbers after it
                return None
            if part is not None and part.is_message and more:
                part = self._embedded(part)
        return part

    def section_range(self, section: Section) -> tuple[int, int, int | None] | None:
        """(start, end, part_end) of the raw bytes a section copies, or None for "".

        For a header, `part_end` is where its part ends (see `_header_end`); else None.
        HEADER.FIELDS[.NOT] gives the range of the header to filter.
        """
        if not section.part:
            root = self.root()
            if section.text is None:
                return 0, self.size, None
            if section.text == "TEXT":
                return root.body_start, self.size, None
            if section.text == "MIME":  # not valid IMAP; the parser rejects it
                return None
            return 0, root.body_start, root.end
        part = self.find(section.part)
        if part is None:
            return None
        if section.text is None:
            return part.body_start, part.end, None
        if section.text == "MIME":
            # For a message/rfc822 part this is its own MIME header (Dovecot's choice b).
            return part.header_start, part.body_start, part.end
        if not part.is_message:
            return None
        embedded = self._embedded(part)
        if section.text == "TEXT":
            return embedded.body_start, embedded.end, None
        return embedded.header_start, embedded.body_start, embedded.end


def fetch_section(
    parts: MessageParts,
    section: Section,
    read_range: ReadRange,
    partial: tuple[int, int] | None = None,
) -> bytes:
    """The octets of `BODY[section]<partial>` as sent in the literal."""
    found = parts.section_range(section)
    if found is None:
        return b""
    start, end, part_end = found
    if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        # Dovecot's header filter reads on to the blank line even where the header's size
        # (below) stops short of it.
        data = filter_header_fields(
            read_range(start, end),
            section.header_fields,
            exclude=section.text == "HEADER.FIELDS.NOT",
        )
        data = apply_partial(data, partial)
    else:
        if part_end is not None and end == part_end:
            end = _header_end(read_range, start, end)
        if partial is not None:
            origin, count = partial
            start, end = start + origin, min(end, start + origin + count)
        data = read_range(start, end) if start < end else b""
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


def _header_end(read_range: ReadRange, start: int, end: int) -> int:
    """Where a header with an empty body ends, as Dovecot counts it.

    When a boundary follows right away, the line end before the boundary belongs to the
    boundary (RFC 2046 §5.1.1), even if it ends the header's blank line; the analyser gives it
    to the header, Dovecot does not.
    """
    if end <= start or read_range(end, end + 1) != b"-":
        return end
    tail = read_range(max(start, end - 2), end)
    if tail.endswith(b"\r\n"):
        return end - 2
    if tail.endswith(b"\n"):
        return end - 1
    return end


def apply_partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """RFC 3501 §6.4.5 `<origin.count>`: an origin past the end gives an empty string."""
    if partial is None:
        return data
    origin, count = partial
    return data[origin : origin + count]


def filter_header_fields(header: bytes, names: Sequence[str], *, exclude: bool) -> bytes:
    """HEADER.FIELDS (exclude=False) or HEADER.FIELDS.NOT (exclude=True) of a raw header.

    As Dovecot's istream-header-filter: a field is matched on its first line and its
    continuation lines follow it; a line without a colon is a field named by the whole line;
    every emitted line ends in CRLF (a last line without any line end stays without one).
    """
    wanted = {name.encode("utf-8", "surrogateescape").lower() for name in names}
    out: list[bytes] = []
    matched = False
    seen_field = False
    saw_blank_line = False
    lines = header.split(b"\n")  # only LF ends a line, as in Dovecot's header parser
    last = len(lines) - 1
    for index, content in enumerate(lines):
        newline = index < last
        if not newline and not content:
            break
        if newline and content.endswith(b"\r"):
            content = content[:-1]
        if not content and newline:
            saw_blank_line = True
            break
        # A line starting with white space continues the field before it; the first line
        # has none to continue and is a field of its own.
        if not seen_field or content[:1] not in (b" ", b"\t"):
            seen_field = True
            name, colon, _ = content.partition(b":")
            field = name.rstrip(b" \t").lower() if colon else content.lower()
            matched = (field in wanted) != exclude
        if matched:
            out.append(content + b"\r\n" if newline else content)
    # Dovecot adds the end-of-header blank line to HEADER.FIELDS even when the message has
    # none; HEADER.FIELDS.NOT copies it only when present.
    if saw_blank_line or not exclude:
        if out and not out[-1].endswith(b"\n"):
            out.append(b"\r\n")
        out.append(b"\r\n")
    return b"".join(out)
