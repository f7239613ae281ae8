"""Result types of the analyser and their JSON form for storage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PartSpan:
    """Byte offsets of one addressable part, for BODY[section] fetches (RFC 3501 §6.4.5).

    ``section`` follows RFC 3501 numbering ("" is the whole message).  The part's MIME header
    is ``[header_start, body_start)`` and its body ``[body_start, end)``.  For a
    message/rfc822 part (``is_message``) the body is an embedded message whose header is
    ``[body_start, message_body_start)`` and whose text is ``[message_body_start, end)``; the
    same holds for the root span, whose header is the message header.

    A part with an empty body right before a boundary line (its header ended by its blank
    line or cut short by the boundary line itself) ends where the boundary line begins, and
    its header keeps the line end before that line.  Dovecot counts that line end as the
    boundary's (RFC 2046 §5.1.1), so FETCH drops it from the header it serves
    (gateway/imap/body_sections.py).
    """

    section: str
    header_start: int
    body_start: int
    end: int
    content_type: str
    is_multipart: bool = False
    is_message: bool = False
    message_body_start: int | None = None


def parts_to_json(parts: tuple[PartSpan, ...]) -> str:
    """Compact JSON for one database column."""
    return json.dumps(
        [
            {
                "section": part.section,
                "header_start": part.header_start,
                "body_start": part.body_start,
                "end": part.end,
                "content_type": part.content_type,
                "is_multipart": part.is_multipart,
                "is_message": part.is_message,
                "message_body_start": part.message_body_start,
            }
            for part in parts
        ],
        separators=(",", ":"),
    )


def parts_from_json(text: str) -> tuple[PartSpan, ...]:
    """Inverse of :func:`parts_to_json`."""
    return tuple(PartSpan(**item) for item in json.loads(text))


@dataclass(frozen=True)
class AnalyzedMessage:
    """Everything the store and the IMAP server need to know about one raw message."""

    size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: tuple[PartSpan, ...]
    message_id: str | None
    sent_date: datetime | None
    subject: str
    from_addr: str
    to_addr: str
    cc_addr: str
    bcc_addr: str
    header_text: str
    body_text: str
    # True when body_text is not all of the message's text: SEARCH must then read the blob.
    body_text_truncated: bool = False

    def find_part(self, section: str) -> PartSpan | None:
        """The span for an RFC 3501 section number ("" for the whole message)."""
        for part in self.parts:
            if part.section == section:
                return part
        return None
