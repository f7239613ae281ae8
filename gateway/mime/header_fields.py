"""Split a header block into (name, value) fields the way Dovecot unfolds them.

RFC 5322 §2.2.3 unfolding removes the CRLF before folding whitespace.  Dovecot's
``full_value`` keeps an LF at each fold (CR dropped) plus the folding whitespace, and strips
only the blanks right after the colon.  The LF matters: ENVELOPE drops it from Date and
Message-ID (which then stay quoted strings) but counts it as a change in the Subject (which
then becomes a literal), so callers that want plain unfolded text remove the LFs themselves.
"""

from __future__ import annotations

import re

_LINE = re.compile(rb"[^\n]*\n|[^\n]+\Z")


def split_header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Fields of a raw header block (without the empty separator line), in order."""
    fields: list[tuple[bytes, bytearray]] = []
    for match in _LINE.finditer(block):
        line = match.group()
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            # RFC 5322 §2.2.3: a continuation line belongs to the previous field.
            if fields:
                fields[-1][1].extend(b"\n" + line)
            continue
        colon = line.find(b":")
        if colon < 0:
            # Not a header field at all; Dovecot keeps it as a nameless line we never use.
            fields.append((line, bytearray()))
            continue
        name = line[:colon].rstrip(b" \t")
        value = line[colon + 1 :].lstrip(b" \t")
        fields.append((name, bytearray(value)))
    return [(name, bytes(value)) for name, value in fields]


def header_strdup(value: bytes) -> bytes:
    """Dovecot's ``message_header_strdup``: NUL octets become U+FFFD."""
    return value.replace(b"\x00", "\ufffd".encode()) if b"\x00" in value else value
