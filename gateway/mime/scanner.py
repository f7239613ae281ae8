"""Streaming MIME structure scanner (RFC 2045/2046), sans-IO and bounded in memory.

Bytes go in with :meth:`MimeScanner.feed` in chunks of any size; the scanner keeps only the
current line (up to a fragment limit), each part's header block (capped) and the decoded
search text (capped).  Part boundaries follow Dovecot 2.3's lib-mail/message-parser.c so that
sizes and line counts in BODYSTRUCTURE agree with it:

* a boundary line is ``--`` + a boundary of any open multipart as a *prefix* of the line;
  the longest such boundary wins, and of equal ones the newest multipart's (RFC 2046 §5.1.1
  says the same boundary may be reused when nested);
* a boundary line without a line end at the end of the message starts no new part;
* the line ending before a boundary line belongs to the boundary, not to the part;
* a part without a blank line after its headers has an empty body;
* a boundary line ends a header block too (a part's MIME header or the header of an embedded
  message/rfc822): the part then has an empty body, and a multipart cut short this way has
  no children, since its own boundary is only known once its header has ended;
* without MIME-Version or Content-Type, Content-* headers are ignored (RFC 2045 §4);
* parts under multipart/digest default to message/rfc822 (RFC 2046 §5.1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.mime.header_fields import split_header_fields
from gateway.mime.parameters import parse_parameters
from gateway.mime.part_data import EnvelopeData, PartData
from gateway.mime.rfc822_lexer import Rfc822Lexer
from gateway.mime.text_decode import TextCollector

MAX_HEADER_BYTES = 256 * 1024  # per part; further header lines are counted but not kept
MAX_LINE_FRAGMENT = 64 * 1024
_HEADER_SEARCH_WINDOW = 64 * 1024  # longer lines are processed in pieces
# Decoded text kept for SEARCH BODY/TEXT; beyond it, search reads the message itself.
BODY_TEXT_LIMIT = 128 * 1024
# Dovecot's message_parser limits: deeper or further parts are not split any more.
MAX_NESTED_PARTS = 100
MAX_TOTAL_PARTS = 10000


@dataclass(eq=False)
class ScannedPart:
    """One node of the MIME tree with its raw-byte offsets and Dovecot-style sizes."""

    parent: ScannedPart | None
    header_start: int
    depth: int = 0
    children: list[ScannedPart] = field(default_factory=list)
    body_start: int = -1
    end: int = -1
    body_lines: int = 0
    header_block: bytearray = field(default_factory=bytearray)
    header_complete: bool = True
    is_mime: bool = False
    is_multipart: bool = False
    is_message: bool = False
    is_digest: bool = False
    boundary: bytes | None = None
    data: PartData = field(default_factory=PartData)
    envelope: EnvelopeData | None = None
    lf_at_body_start: int = 0
    collector: TextCollector | None = None

    @property
    def body_size(self) -> int:
        return max(self.end - self.body_start, 0)

    @property
    def content_type(self) -> str:
        if self.is_message:
            return "message/rfc822"
        if self.data.content_type is None:
            return "text/plain"
        subtype = self.data.content_subtype or b""
        return (self.data.content_type + b"/" + subtype).decode("latin-1").lower()


class MimeScanner:
    """Incremental scanner building a :class:`ScannedPart` tree."""

    def __init__(self, text_limit: int = BODY_TEXT_LIMIT, *, envelopes: bool = True) -> None:
        """`text_limit`: decoded text kept for search; 0 decodes none (and marks any text
        part as left out, `text_truncated`). `envelopes=False` skips parsing ENVELOPE fields
        (addresses are a quarter of the work) when only the text is wanted."""
        self._text_limit = text_limit
        self._envelopes = envelopes
        self.root = ScannedPart(parent=None, header_start=0)
        self.root.envelope = EnvelopeData() if envelopes else None
        self.texts: list[str] = []
        self.root_fields: list[tuple[bytes, bytes]] = []
        self._text_bytes = 0
        self.text_truncated = False  # body_text holds less than all decoded text
        self._part = self.root
        self._in_header = True
        self._boundaries: list[tuple[bytes, ScannedPart]] = []
        self._buffer = bytearray()
        self._offset = 0  # octets consumed so far
        self._lf_count = 0  # LF octets consumed so far
        self._at_line_start = True
        self._skip_line_rest = False  # inside the tail of an over-long boundary line
        # The multipart whose next part starts once the boundary line being skipped ends.
        self._part_after_line: ScannedPart | None = None
        self._pending_eol = 0  # length of the line end that may still belong to a boundary
        self._total_parts = 1
        self._finished = False

    # -- input -----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self._finished or not chunk:
            return
        self._buffer += chunk
        start = 0
        buffer = self._buffer
        while True:
            if self._at_line_start and not self._skip_line_rest:
                if self._in_header:
                    start = self._header_run(buffer, start)
                else:
                    start = self._body_run(buffer, start)
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            self._process(bytes(buffer[start : newline + 1]))
            start = newline + 1
        del buffer[:start]
        # Over-long line: process a fragment, but keep a trailing CR so that a CRLF split
        # across chunks is still seen as one line ending.
        while len(buffer) > MAX_LINE_FRAGMENT:
            cut = MAX_LINE_FRAGMENT
            self._process(bytes(buffer[:cut]))
            del buffer[:cut]

    def finish(self) -> ScannedPart:
        if self._finished:
            return self.root
        self._finished = True
        if self._buffer:
            self._process(bytes(self._buffer))
            self._buffer.clear()
        while self._in_header:
            # EOF inside a header block: the header ends here with an empty body.
            self._end_headers()
        if self._pending_eol and self._part.collector is not None:
            # no boundary followed, so the last line end is part of the body
            self._part.collector.feed(b"\r\n" if self._pending_eol == 2 else b"\n")
        self._close_until(None, self._offset, self._lf_count)
        return self.root

    # -- line processing -------------------------------------------------------------------

    def _process(self, piece: bytes) -> None:
        at_start = self._at_line_start
        complete = piece.endswith(b"\n")
        self._at_line_start = complete
        if self._skip_line_rest:
            self._consume(piece)
            self._skip_line_rest = not complete
            if complete and self._part_after_line is not None:
                self._start_part(self._part_after_line, self._offset)
                self._part_after_line = None
            return
        if self._in_header:
            self._header_piece(piece, at_start, complete)
        else:
            self._body_piece(piece, at_start, complete)

    def _consume(self, piece: bytes) -> None:
        self._offset += len(piece)
        self._lf_count += piece.count(b"\n")

    def _header_piece(self, piece: bytes, at_start: bool, complete: bool) -> None:
        # Dovecot looks for a boundary before every header line, so one ends the header here.
        maybe_boundary = at_start and bool(self._boundaries) and piece.startswith(b"--")
        if maybe_boundary and self._find_boundary(piece) is not None:
            self._cut_headers()
            self._body_piece(piece, at_start, complete)
            return
        part = self._part
        self._consume(piece)
        if at_start and piece in (b"\n", b"\r\n"):
            self._end_headers()
            return
        if len(part.header_block) + len(piece) <= MAX_HEADER_BYTES and part.header_complete:
            part.header_block += piece
        else:
            part.header_complete = False

    def _body_piece(self, piece: bytes, at_start: bool, complete: bool) -> None:
        if at_start and self._boundaries and piece.startswith(b"--"):
            found = self._find_boundary(piece)
            if found is not None:
                self._boundary_line(found, piece, complete)
                return
        part = self._part
        if self._pending_eol and part.collector is not None:
            part.collector.feed(b"\r\n" if self._pending_eol == 2 else b"\n")
        self._consume(piece)
        eol = 0
        if complete:
            eol = 2 if piece.endswith(b"\r\n") else 1
        self._pending_eol = eol
        if part.collector is not None:
            part.collector.feed(piece[: len(piece) - eol])

    def _header_run(self, buffer: bytearray, start: int) -> int:
        """Consume every complete header line before the blank line that ends the block."""
        if buffer.startswith(b"\n", start) or buffer.startswith(b"\r\n", start):
            return start  # the blank line itself: the line path ends the header block
        # Look for the blank line in whichever line-ending style comes first, without
        # scanning the rest of a large buffer for the other style.
        # scanning a large buffer for the other style (the window bounds the work per call).
        window = min(len(buffer), start + _HEADER_SEARCH_WINDOW)
        crlf = buffer.find(b"\n\r\n", start, window)
        lf = buffer.find(b"\n\n", start, crlf + 2 if crlf >= 0 else window)
        end = lf if lf >= 0 else crlf
        stop = end + 1 if end >= 0 else buffer.rfind(b"\n", start, window) + 1
        if self._boundaries:
            # A line that may be a boundary goes to the line path, which ends the header there.
            if buffer.startswith(b"--", start):
                return start
            dashes = buffer.find(b"\n--", start, stop)
            if dashes >= 0:
                stop = dashes + 1
        if stop <= start:
            return start  # a blank line (or no complete line) here: the line path handles it
        part = self._part
        block = bytes(buffer[start:stop])
        if part.header_complete and len(part.header_block) + len(block) <= MAX_HEADER_BYTES:
            self._consume(block)
            part.header_block += block
        else:
            for line in block[:-1].split(b"\n"):
                self._header_piece(line + b"\n", at_start=True, complete=True)
        return stop

    def _body_run(self, buffer: bytearray, start: int) -> int:
        """Consume, in one step, every complete body line before the next possible boundary.

        Speed matters here: attachments are most of the bytes, and looking only at lines that
        begin with "--" keeps the work per chunk instead of per line. Returns the new start.
        """
        if self._boundaries:
            if buffer.startswith(b"--", start):
                return start  # the line path decides whether this is a boundary
            candidate = buffer.find(b"\n--", start)
            stop = candidate + 1 if candidate >= 0 else buffer.rfind(b"\n", start) + 1
        else:
            stop = buffer.rfind(b"\n", start) + 1
        if stop <= start:
            return start
        block = bytes(buffer[start:stop])
        part = self._part
        if self._pending_eol and part.collector is not None:
            part.collector.feed(b"\r\n" if self._pending_eol == 2 else b"\n")
        self._offset += len(block)
        self._lf_count += block.count(b"\n")
        eol = 2 if block.endswith(b"\r\n") else 1
        self._pending_eol = eol
        if part.collector is not None:
            part.collector.feed(block[: len(block) - eol])
        return stop

    def _find_boundary(self, line: bytes) -> int | None:
        # RFC 2046 §5.1.1 only asks for the boundary as a prefix of the line. Like Dovecot
        # 2.3, the longest matching boundary wins and, among equal ones, the newest.
        found = None
        found_length = -1
        for index in range(len(self._boundaries) - 1, -1, -1):
            boundary = self._boundaries[index][0]
            if len(boundary) > found_length and line.startswith(boundary, 2):
                found, found_length = index, len(boundary)
        return found

    def _boundary_line(self, index: int, line: bytes, complete: bool) -> None:
        boundary, owner = self._boundaries[index]
        end = self._offset - self._pending_eol
        end_lf = self._lf_count - (1 if self._pending_eol else 0)
        self._close_until(owner, end, end_lf)
        self._part = owner
        closing = line.startswith(b"--", 2 + len(boundary))
        # RFC 2046 §5.1.1: the close delimiter ends this multipart and any nested ones left
        # open; a plain delimiter only abandons multiparts nested deeper than it.
        del self._boundaries[index if closing else index + 1 :]
        self._consume(line)
        self._skip_line_rest = not complete
        self._pending_eol = 0
        if closing:
            return
        # The next part begins after the boundary line's line end; without one (at the end
        # of the message) there is no next part, as in Dovecot.
        if complete:
            self._start_part(owner, self._offset)
        else:
            self._part_after_line = owner

    # -- part lifecycle --------------------------------------------------------------------

    def _start_part(self, parent: ScannedPart, offset: int) -> None:
        child = ScannedPart(parent=parent, header_start=offset, depth=parent.depth + 1)
        if parent.is_multipart:
            child.is_mime = True  # RFC 2045 §4: body parts of a MIME entity are MIME
        if parent.is_message and self._envelopes:
            child.envelope = EnvelopeData()
        parent.children.append(child)
        self._total_parts += 1
        self._part = child
        self._in_header = True

    def _cut_headers(self) -> None:
        """A boundary line ends the header block being read (Dovecot's message-parser.c).

        The part gets an empty body; an embedded message it announces is empty as well.  The
        header keeps the line end before the boundary, as a header followed by its blank line
        and a boundary does: RFC 2046 §5.1.1 gives that line end to the boundary, and FETCH
        (gateway/imap/body_sections.py) leaves it out of the header it serves.
        """
        while self._in_header:
            self._end_headers(cut=True)

    def _end_headers(self, cut: bool = False) -> None:
        part = self._part
        part.body_start = self._offset
        part.lf_at_body_start = self._lf_count
        self._in_header = False
        self._pending_eol = 0
        self._apply_headers(part)
        # A multipart whose header a boundary cut short never starts its own boundary scope:
        # Dovecot only opens it at the blank line, so the part shows no children.
        if part.is_multipart and part.boundary is not None and not cut:
            self._boundaries.append((part.boundary, part))
        elif part.is_message:
            self._start_part(part, self._offset)
        elif not part.is_multipart and part.data.is_text:
            budget = self._text_limit - self._text_bytes
            self.text_truncated = self.text_truncated or budget <= 0
            if budget > 0:
                part.collector = TextCollector(
                    part.data.content_transfer_encoding, part.data.charset(), budget
                )

    def _apply_headers(self, part: ScannedPart) -> None:
        seen_content_type = False
        parent_is_message = part.parent is not None and part.parent.is_message
        fields = split_header_fields(bytes(part.header_block))
        if part.parent is None:
            self.root_fields = fields
        for name, value in fields:
            key = name.lower()
            if key == b"mime-version":
                part.is_mime = True
            elif key == b"content-type":
                part.is_mime = True
                if not seen_content_type:
                    seen_content_type = True
                    self._classify(part, value)
            if key.startswith(b"content-"):
                part.data.apply_header(name, value)
            if part.envelope is not None and (part.parent is None or parent_is_message):
                part.envelope.apply_header(name, value)
        part.header_block = bytearray()  # no longer needed; frees memory early
        if not part.is_mime:
            part.data = PartData()
            part.is_multipart = part.is_message = part.is_digest = False
            part.boundary = None
        in_digest = part.parent is not None and part.parent.is_digest
        if in_digest and (not seen_content_type or not part.is_mime):
            part.is_message = True
        if part.depth >= MAX_NESTED_PARTS or self._total_parts >= MAX_TOTAL_PARTS:
            part.is_multipart = part.is_message = False
            part.boundary = None

    @staticmethod
    def _classify(part: ScannedPart, value: bytes) -> None:
        lexer = Rfc822Lexer(value)
        lexer.skip_lwsp()
        out = bytearray()
        if lexer.parse_content_type(out) < 0:
            return
        content_type = bytes(out).lower()
        if content_type == b"message/rfc822":
            part.is_message = True
        elif content_type.startswith(b"multipart/"):
            part.is_multipart = True
            part.is_digest = content_type == b"multipart/digest"
            for key, param in parse_parameters(lexer):
                if key.lower() == b"boundary":
                    part.boundary = param
                    break

    def _close_until(self, owner: ScannedPart | None, end: int, end_lf: int) -> None:
        part: ScannedPart | None = self._part
        while part is not None and part is not owner:
            if part.body_start < 0:
                part.body_start = end
                part.lf_at_body_start = end_lf
            part.end = end
            part.body_lines = end_lf - part.lf_at_body_start
            if part.collector is not None:
                text = part.collector.finish()
                self._text_bytes += len(part.collector)
                self.text_truncated = self.text_truncated or part.collector.truncated
                part.collector = None
                if text:
                    self.texts.append(text)
            part = part.parent
