"""RFC 5322 / RFC 2045 token scanning with Dovecot 2.3's exact leniency.

ENVELOPE and BODYSTRUCTURE must match Dovecot byte for byte, and Dovecot's answer for broken
input is defined by its lexer (lib-mail/rfc822-parser.c, rfc2231-parser.c), not by the RFCs.
So this module follows that lexer's control flow: every ``parse_*`` returns -1 on a syntax
error, 0 at end of input and 1 when more input follows.
"""

from __future__ import annotations

import re

# Character classes of RFC 5322 §3.2.3 atext.  Like Dovecot, every 8-bit octet counts as
# atext (so raw UTF-8 names still parse); bit 2 marks RFC 2045 §5.1 tspecials that are atext.
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _ATEXT[_c] = 1
for _c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ATEXT[_c] = 2
for _c in range(0x80, 0x100):
    _ATEXT[_c] = 2
for _c in b"/=?":
    _ATEXT[_c] = 4
ATEXT = bytes(_ATEXT)


def _run_of(octets: bytes) -> re.Pattern[bytes]:
    """A pattern matching a (possibly empty) run of the given octets, for `match(data, pos)`."""
    return re.compile(b"[" + b"".join(re.escape(bytes([o])) for o in octets) + b"]*")


# The scanning loops below advance over runs of these classes in C, not octet by octet.
_ATEXT_RUN = _run_of(bytes(o for o in range(256) if ATEXT[o]))
_ATEXT_OR_DOT_RUN = _run_of(bytes(o for o in range(256) if ATEXT[o] or o == 0x2E))
_TOKEN_OR_DOT_RUN = _run_of(bytes(o for o in range(256) if (ATEXT[o] & 3) or o == 0x2E))
_CFWS_START = frozenset(b" \t\r\n(")
_WHITESPACE_RUN = re.compile(rb"[ \t\r\n]*")

# Dovecot replaces NUL inside quoted strings and comments with U+FFFD when parsing addresses
# and MIME parameters.
NUL_REPLACEMENT = "\ufffd".encode()


def is_atext(octet: int) -> bool:
    return ATEXT[octet] != 0


def is_token_char(octet: int) -> bool:
    """RFC 2045 §5.1 token character (atext minus tspecials)."""
    return (ATEXT[octet] & 3) != 0


class Rfc822Lexer:
    """A cursor over one header value."""

    def __init__(self, data: bytes, *, keep_comment: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytearray | None = bytearray() if keep_comment else None
        self.nul_replacement: bytes | None = None

    def peek(self) -> int:
        """The octet at the cursor, or -1 at the end."""
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        # RFC 5322 §3.2.2: comments nest and may contain quoted-pairs.
        data = self.data
        comment = self.last_comment
        if comment is not None:
            del comment[:]
        self.pos += 1
        start = self.pos
        level = 1
        while self.pos < self.end:
            octet = data[self.pos]
            if octet == 0:
                if comment is not None and self.nul_replacement is not None:
                    comment += data[start : self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif octet == 0x28:
                level += 1
            elif octet == 0x29:
                level -= 1
                if level == 0:
                    if comment is not None:
                        comment += data[start : self.pos]
                    self.pos += 1
                    return 1 if self.pos < self.end else 0
            elif octet == 0x0A:
                if comment is not None:
                    chunk = data[start : self.pos]
                    comment += chunk[:-1] if chunk.endswith(b"\r") else chunk
                    start = self.pos + 1
            elif octet == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1
                else:
                    if comment is not None:
                        comment += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        """Skip whitespace and comments (CFWS); 1 if input remains, 0 at end, -1 on error."""
        data = self.data
        if self.pos < self.end and data[self.pos] not in _CFWS_START:
            return 1  # the common case: nothing to skip
        while self.pos < self.end:
            self.pos = _WHITESPACE_RUN.match(data, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= self.end or data[self.pos] != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < self.end else 0

    def parse_atom(self, out: bytearray) -> int:
        start = self.pos
        self.pos = _ATEXT_RUN.match(self.data, start).end()  # type: ignore[union-attr]
        if self.pos == start:
            return -1
        out += self.data[start : self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def parse_dot_atom(self, out: bytearray) -> int:
        data = self.data
        if self.pos >= self.end or not is_atext(data[self.pos]):
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < self.end:
            if is_atext(data[self.pos]):
                self.pos = _ATEXT_RUN.match(data, self.pos).end()  # type: ignore[union-attr]
                continue
            if start == self.pos:
                return -1
            out += data[start : self.pos]
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if data[self.pos] != 0x2E:
                return 1
            self.pos += 1
            out.append(0x2E)
            if self.skip_lwsp() <= 0:
                return -1
            start = self.pos
        out += data[start : self.pos]
        return 0

    def parse_mime_token(self, out: bytearray) -> int:
        data = self.data
        start = self.pos
        self.pos = _TOKEN_OR_DOT_RUN.match(data, start).end()  # type: ignore[union-attr]
        out += data[start : self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def parse_quoted_string(self, out: bytearray) -> int:
        data = self.data
        self.pos += 1
        start = self.pos
        while self.pos < self.end:
            octet = data[self.pos]
            if octet == 0:
                if self.nul_replacement is not None:
                    out += data[start : self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif octet == 0x22:
                out += data[start : self.pos]
                self.pos += 1
                return self.skip_lwsp()
            elif octet == 0x0A:
                chunk = data[start : self.pos]
                out += chunk[:-1] if chunk.endswith(b"\r") else chunk
                start = self.pos + 1
            elif octet == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1
                else:
                    out += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1

    def _parse_atom_or_dot(self, out: bytearray) -> int:
        data = self.data
        start = self.pos
        self.pos = _ATEXT_OR_DOT_RUN.match(data, start).end()  # type: ignore[union-attr]
        out += data[start : self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def parse_phrase(self, out: bytearray) -> int:
        """RFC 5322 §3.2.5 phrase, including obs-phrase dots; words joined by one space."""
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == 0x2E:
            return -1
        while True:
            if self.data[self.pos] == 0x22:
                ret = self.parse_quoted_string(out)
            else:
                ret = self._parse_atom_or_dot(out)
            if ret <= 0:
                return ret
            octet = self.data[self.pos]
            if not is_atext(octet) and octet not in (0x22, 0x2E):
                break
            out.append(0x20)
        return self.skip_lwsp()

    def _parse_domain_literal(self, out: bytearray) -> int:
        data = self.data
        start = self.pos
        self.pos += 1
        while self.pos < self.end:
            octet = data[self.pos]
            if octet == 0:
                if self.nul_replacement is not None:
                    out += data[start : self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif octet == 0x5B:
                return -1
            elif octet == 0x5D:
                out += data[start : self.pos + 1]
                self.pos += 1
                return self.skip_lwsp()
            elif octet == 0x0A:
                chunk = data[start : self.pos]
                out += chunk[:-1] if chunk.endswith(b"\r") else chunk
                start = self.pos + 1
            elif octet == 0x5C:
                self.pos += 1
                if self.pos >= self.end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    out += data[start : self.pos]
                    start = self.pos
                    self.pos -= 1
            self.pos += 1
        return -1

    def parse_domain(self, out: bytearray) -> int:
        """``"@" domain`` where the cursor is on the "@"."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:
            return self._parse_domain_literal(out)
        return self.parse_dot_atom(out)

    def parse_content_type(self, out: bytearray) -> int:
        """RFC 2045 §5.1 ``type "/" subtype``; on error ``out`` is left without the value."""
        mark = len(out)
        if self.skip_lwsp() <= 0:
            return -1
        if self.parse_mime_token(out) <= 0 or len(out) == mark:
            return -1
        if self.data[self.pos] != 0x2F:
            del out[mark:]
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            del out[mark:]
            return -1
        out.append(0x2F)
        sub_mark = len(out)
        ret = self.parse_mime_token(out)
        if ret < 0 or len(out) == sub_mark or (self.pos < self.end and self.peek() != 0x3B):
            del out[mark:]
            return -1
        return ret

    def parse_content_param(self) -> tuple[int, bytes, bytes]:
        """One ``; key=value`` parameter: (status, key, value)."""
        if self.pos >= self.end:
            return 0, b"", b""
        if self.data[self.pos] != 0x3B:
            return -1, b"", b""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, b"", b""
        key = bytearray()
        if self.parse_mime_token(key) <= 0:
            return -1, b"", b""
        if self.data[self.pos] != 0x3D:
            return -1, b"", b""
        self.pos += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass
        elif self.data[self.pos] == 0x22:
            ret = self.parse_quoted_string(value)
        elif self.data[self.pos] == 0x3D:
            # Dovecot accepts unquoted RFC 2047 words ("=?...?=") as values.
            while self.pos < self.end and self.data[self.pos] not in b"; \t\r\n":
                value.append(self.data[self.pos])
                self.pos += 1
        else:
            ret = self.parse_mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)
