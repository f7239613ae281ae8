"""Decoding for search fields: RFC 2047 words, transfer encodings, charsets.

Only SEARCH uses these strings, so decoding is best effort and never raises: unknown
charsets fall back to UTF-8 with replacement characters, broken base64 is skipped.
"""

from __future__ import annotations

import binascii
import codecs
import re

# RFC 2047 §2: =?charset?encoding?encoded-text?=  (charset may carry an RFC 2231 language)
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WHITESPACE_ONLY = re.compile(rb"^[ \t\r\n]*$")
_QP_HEADER_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# bytes.translate(None, delete) drops the same octets as _BASE64_JUNK, many times faster.
_NOT_BASE64 = bytes(octet for octet in range(256) if octet not in _BASE64_ALPHABET)


def lookup_charset(name: str | None) -> str:
    """A Python codec name for a MIME charset label, UTF-8 when unknown."""
    if not name:
        return "utf-8"
    label = name.strip().strip('"').split("*", 1)[0].lower()
    aliases = {
        "x-sjis": "cp932",
        "shift_jis": "cp932",
        "sjis": "cp932",
        "x-unknown": "utf-8",
        "iso-2022-jp": "iso2022_jp_ext",
        "us-ascii": "utf-8",
        "ascii": "utf-8",
    }
    label = aliases.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL inside the label
        return "utf-8"


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset; undeclared text tries UTF-8, then common fallbacks."""
    if charset:
        return data.decode(lookup_charset(charset), "replace")
    return decode_unlabelled(data)


def decode_unlabelled(data: bytes) -> str:
    """8-bit text without a charset label (raw header bytes, text without charset)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x1b$" in data or b"\x1b(" in data:
        return data.decode("iso2022_jp_ext", "replace")
    return data.decode("cp1252", "replace")


def _decode_word(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"b", b"B"):
        cleaned = _BASE64_JUNK.sub(b"", text)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return binascii.a2b_base64(cleaned)
        except (binascii.Error, ValueError):
            return b""
    # RFC 2047 §4.2: "_" is a space, "=XX" a hex octet
    return _QP_HEADER_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), text.replace(b"_", b" "))


def decode_header_value(value: bytes) -> str:
    """Unicode text of a header value with RFC 2047 encoded words decoded."""
    pieces: list[tuple[str | None, bytes]] = []  # (charset or None for raw text, bytes)
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        # RFC 2047 §6.2: whitespace between two encoded words is not displayed
        if between and not (
            pieces and pieces[-1][0] is not None and _WHITESPACE_ONLY.match(between)
        ):
            pieces.append((None, between))
        charset = match.group(1).decode("ascii", "replace")
        decoded = _decode_word(match.group(2), match.group(3))
        if pieces and pieces[-1][0] == charset:
            # Multibyte characters may be split across words: join before decoding.
            pieces[-1] = (charset, pieces[-1][1] + decoded)
        else:
            pieces.append((charset, decoded))
        pos = match.end()
    if pos < len(value):
        pieces.append((None, value[pos:]))
    out: list[str] = []
    for charset, data in pieces:
        out.append(decode_unlabelled(data) if charset is None else decode_bytes(data, charset))
    return "".join(out).replace("\x00", "\ufffd")


def _decode_base64(data: bytes) -> bytes:
    if not data:
        return b""
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        return b""


class TextCollector:
    """Decodes one text/* body, fed as raw bytes in any chunking, into at most ``budget`` bytes.

    Lines are reassembled here because quoted-printable soft breaks (RFC 2045 §6.7 rule 5)
    depend on the line end; a line longer than the carry limit is processed in pieces.
    """

    _CARRY_LIMIT = 64 * 1024

    def __init__(self, transfer_encoding: bytes | None, charset: str | None, budget: int) -> None:
        encoding = (transfer_encoding or b"").strip().lower()
        self._mode = {b"base64": "base64", b"quoted-printable": "qp"}.get(encoding, "plain")
        self._charset = charset
        self._budget = max(budget, 0)
        self.truncated = False  # some decoded text did not fit the budget
        self._out = bytearray()
        self._line = bytearray()
        self._base64_carry = b""

    @property
    def full(self) -> bool:
        return len(self._out) >= self._budget

    def feed(self, data: bytes) -> None:
        """Raw body bytes (still transfer-encoded), line endings included."""
        if self.full:
            self.truncated = self.truncated or bool(data)
            return
        if self._mode == "plain":
            self._feed_plain(data)
            return
        if self._mode == "base64" and not self._line:
            data = self._feed_base64_until_padding(data)
            if not data or self.full:
                return
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            self._line += data[start:newline]
            self._take_line(has_eol=True)
            start = newline + 1
            if self.full:
                return
        self._line += data[start:]
        if len(self._line) > self._CARRY_LIMIT:
            self._take_line(has_eol=False)

    def _feed_plain(self, data: bytes) -> None:
        # Same result as line by line (each line loses one trailing CR), in one pass.
        last = data.rfind(b"\n")
        if last >= 0:
            block = bytes(self._line) + data[: last + 1]
            del self._line[:]
            self._out += block.replace(b"\r\n", b"\n")
            if len(self._out) > self._budget:
                del self._out[self._budget :]
                self.truncated = True
            data = data[last + 1 :]
        self._line += data
        if len(self._line) > self._CARRY_LIMIT:
            self._take_line(has_eol=False)

    def _feed_base64_until_padding(self, data: bytes) -> bytes:
        """Decode whole lines in runs; a line with "=" goes through the line path alone.

        Returns what is left for the line path (an incomplete line holding "=").
        """
        while data and not self.full:
            equals = data.find(b"=")
            if equals < 0:
                self._feed_base64_lines(data)
                return b""
            line_start = data.rfind(b"\n", 0, equals) + 1
            if line_start:
                self._feed_base64_lines(data[:line_start])
            line_end = data.find(b"\n", equals)
            if line_end < 0:
                return data[line_start:]
            self._line += data[line_start:line_end]
            self._take_line(has_eol=True)
            data = data[line_end + 1 :]
        return b""

    def _feed_base64_lines(self, data: bytes) -> None:
        # Without "=" no line ends the data early, so whole lines decode as one run.
        last = data.rfind(b"\n")
        if last >= 0:
            joined = self._base64_carry + data[: last + 1].translate(None, _NOT_BASE64)
            usable = len(joined) - len(joined) % 4
            self._base64_carry = joined[usable:]
            self._out += _decode_base64(joined[:usable])
            if len(self._out) > self._budget:
                del self._out[self._budget :]
                self.truncated = True
        self._line += data[last + 1 :]
        if len(self._line) > self._CARRY_LIMIT:
            self._take_line(has_eol=False)

    def _take_line(self, has_eol: bool) -> None:
        line = bytes(self._line)
        del self._line[:]
        if line.endswith(b"\r"):
            line = line[:-1]
        if self._mode == "base64":
            data = self._base64_carry + _BASE64_JUNK.sub(b"", line.split(b"=", 1)[0])
            usable = len(data) - len(data) % 4
            self._base64_carry = data[usable:]
            self._out += _decode_base64(data[:usable])
            if b"=" in line:
                self._flush_base64()
        elif self._mode == "qp":
            stripped = line.rstrip(b" \t")
            soft_break = stripped.endswith(b"=")
            try:
                self._out += binascii.a2b_qp(stripped[:-1] if soft_break else stripped)
            except (binascii.Error, ValueError):
                self._out += line
            if has_eol and not soft_break:
                self._out += b"\n"
        else:
            self._out += line
            if has_eol:
                self._out += b"\n"
        if len(self._out) > self._budget:
            del self._out[self._budget :]
            self.truncated = True

    def _flush_base64(self) -> None:
        # RFC 2045 §6.8: "=" padding ends the data; a final 2- or 3-char group is still data.
        carry, self._base64_carry = self._base64_carry, b""
        if len(carry) % 4 in (2, 3):
            self._out += _decode_base64(carry + b"=" * (-len(carry) % 4))

    def finish(self) -> str:
        if self._line and not self.full:
            self._take_line(has_eol=False)
        if self._mode == "base64" and not self.full:
            self._flush_base64()
            del self._out[self._budget :]
            self.truncated = True
        return decode_bytes(bytes(self._out), self._charset)

    def __len__(self) -> int:
        return len(self._out)
