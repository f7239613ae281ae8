"""The message-submission duties of RFC 6409 §8 on raw bytes (sans-IO).

The header block is edited as bytes, the body never parsed: what the client sent is relayed
byte for byte apart from the fields added or removed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, getaddresses, make_msgid

_HEADER_END = (b"\r\n\r\n", b"\n\n")


@dataclass(frozen=True)
class PreparedMessage:
    content: bytes
    # Every address of every From: field (RFC 5322 §3.6.2 allows a list).
    from_addresses: tuple[str, ...]
    message_id: str


def split_header(content: bytes) -> tuple[bytes, bytes]:
    """(header block with its final line break, rest starting at the blank line)."""
    ends = [(content.find(marker), marker) for marker in _HEADER_END]
    found = [(index, marker) for index, marker in ends if index >= 0]
    if not found:
        return content, b""
    index, marker = min(found)
    cut = index + len(marker) // 2
    return content[:cut], content[cut:]


def header_fields(header: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, whole field with folded lines and line break) in order."""
    fields: list[tuple[str, bytes]] = []
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            previous, raw = fields[-1]
            fields[-1] = (previous, raw + line)
            continue
        name, colon, _ = line.partition(b":")
        fields.append((name.strip().lower().decode("latin-1") if colon else "", line))
    return fields


def _field_value(raw: bytes) -> str:
    value = raw.partition(b":")[2]
    # RFC 5322 §2.2.3: unfold. Non-ASCII (RFC 6532) decoded as UTF-8, never failing.
    return value.replace(b"\r\n", b"").replace(b"\n", b"").decode("utf-8", "replace").strip()


def prepare_submission(content: bytes, *, now: datetime, domain: str) -> PreparedMessage:
    """Add Date and Message-ID when missing (RFC 6409 §8.1, §8.3); Bcc stays for the Sent
    copy and is removed only from what is relayed (`strip_bcc`)."""
    header, body = split_header(content)
    fields = header_fields(header)
    names = {name for name, _ in fields}
    newline = b"\r\n" if b"\r\n" in header or not header else b"\n"
    added: list[bytes] = []
    if "date" not in names:
        added.append(b"Date: " + format_datetime(now).encode("ascii") + newline)
    message_id = ""
    for name, raw in fields:
        if name == "message-id":
            message_id = _field_value(raw)
            break
    else:
        message_id = make_msgid(domain=domain)
        added.append(b"Message-ID: " + message_id.encode("ascii") + newline)
    from_values = [_field_value(raw) for name, raw in fields if name == "from"]
    addresses = tuple(address for _, address in getaddresses(from_values) if address)
    if not header:
        # No header at all: the added fields become the header, then the blank line.
        return PreparedMessage(b"".join(added) + newline + body, addresses, message_id)
    return PreparedMessage(b"".join(added) + header + body, addresses, message_id)


def strip_bcc(content: bytes) -> bytes:
    """The message without its Bcc fields (RFC 6409 §8: they must not be relayed)."""
    header, body = split_header(content)
    fields = header_fields(header)
    if not any(name == "bcc" for name, _ in fields):
        return content
    return b"".join(raw for name, raw in fields if name != "bcc") + body
