"""The public analyser: raw message bytes in, :class:`AnalyzedMessage` out (sans-IO)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.mime.addresses import (
    MISSING_DOMAIN,
    MISSING_MAILBOX,
    Address,
    format_addresses,
    parse_address_list,
)
from gateway.mime.bodystructure import render_body, render_bodystructure
from gateway.mime.model import AnalyzedMessage, PartSpan
from gateway.mime.part_data import EMPTY_ENVELOPE
from gateway.mime.scanner import BODY_TEXT_LIMIT, MimeScanner, ScannedPart
from gateway.mime.text_decode import decode_header_value, decode_unlabelled


class MessageAnalyzer:
    """Feed a message in chunks of any size, then call :meth:`finish` once."""

    def __init__(self, *, search_text: bool = True) -> None:
        """`search_text=False` skips decoding the body text for SEARCH (a fifth of the work):
        the result then has an empty `body_text`, truncated if the message has any text."""
        self._scanner = MimeScanner(BODY_TEXT_LIMIT if search_text else 0)
        self._size = 0
        self._result: AnalyzedMessage | None = None

    def feed(self, chunk: bytes) -> None:
        """Add the next bytes of the raw message."""
        if self._result is not None:
            raise RuntimeError("feed() after finish()")
        self._size += len(chunk)
        self._scanner.feed(chunk)

    def finish(self) -> AnalyzedMessage:
        """Complete the analysis; calling it again returns the same result."""
        if self._result is None:
            self._result = _build(self._scanner, self._size)
        return self._result


def analyze_message(raw: bytes, *, search_text: bool = True) -> AnalyzedMessage:
    """Analyse a whole message held in memory."""
    analyzer = MessageAnalyzer(search_text=search_text)
    analyzer.feed(raw)
    return analyzer.finish()


def search_text(raw: bytes) -> tuple[str, bool]:
    """(body_text, body_text_truncated) alone, as `analyze_message` gives them, for less work."""
    scanner = MimeScanner(envelopes=False)
    scanner.feed(raw)
    scanner.finish()
    return _body_text(scanner)


def _body_text(scanner: MimeScanner) -> tuple[str, bool]:
    text = "\n".join(scanner.texts)
    return text[:BODY_TEXT_LIMIT], scanner.text_truncated or len(text) > BODY_TEXT_LIMIT


def _build(scanner: MimeScanner, size: int) -> AnalyzedMessage:
    root = scanner.finish()
    envelope = root.envelope.render() if root.envelope is not None else EMPTY_ENVELOPE
    fields = scanner.root_fields
    last: dict[bytes, bytes] = {}
    fields = [(name, value.replace(b"\n", b"")) for name, value in fields]  # unfold
    for name, value in fields:
        last[name.lower()] = value
    header_text = "\n".join(
        f"{name.decode('latin-1')}: {_decoded_text(value)}" for name, value in fields
    )
    message_id = last.get(b"message-id")
    body_text, body_text_truncated = _body_text(scanner)
    parsed = root.envelope.last_addresses if root.envelope is not None else {}

    def address_text(name: bytes) -> str:
        value = last.get(name)
        if value is None:
            return ""
        # The envelope already parsed this field; its parse holds for an unfolded value.
        raw, addresses = parsed.get(name, (None, []))
        return _address_text(addresses if raw == value else parse_address_list(value))

    return AnalyzedMessage(
        size=size,
        envelope=b"(" + envelope + b")",
        bodystructure=render_bodystructure(root),
        body=render_body(root),
        parts=tuple(_spans(root)),
        message_id=message_id.strip().decode("utf-8", "replace") if message_id else None,
        sent_date=_parse_date(last.get(b"date")),
        subject=_decoded(last.get(b"subject")),
        from_addr=address_text(b"from"),
        to_addr=address_text(b"to"),
        cc_addr=address_text(b"cc"),
        bcc_addr=address_text(b"bcc"),
        header_text=header_text,
        body_text=body_text,
        body_text_truncated=body_text_truncated,
    )


def _address_text(parsed: list[Address]) -> str:
    """What SEARCH FROM/TO/CC/BCC match: the parsed addresses re-written as "Name <box@domain>",
    as Dovecot does, so text a parser drops (an unterminated comment) never matches."""
    addresses = [
        replace(
            address,
            mailbox=b"" if address.mailbox == MISSING_MAILBOX else address.mailbox,
            domain=b"" if address.domain == MISSING_DOMAIN else address.domain,
        )
        for address in parsed
    ]
    return decode_header_value(format_addresses(addresses)).strip()


def _decoded(value: bytes | None) -> str:
    return "" if value is None else decode_header_value(value).strip()


def _decoded_text(value: bytes) -> str:
    # Most header values hold no encoded word; skip the RFC 2047 machinery for them.
    if b"=?" in value:
        return decode_header_value(value)
    return decode_unlabelled(value).replace("\x00", "\ufffd")


def _parse_date(value: bytes | None) -> datetime | None:
    """RFC 5322 §3.3 date; None when absent or unparseable.  No zone means UTC."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _span(part: ScannedPart, section: str) -> PartSpan:
    message_body_start = None
    if part.is_message and part.children:
        message_body_start = part.children[0].body_start
    return PartSpan(
        section=section,
        header_start=part.header_start,
        body_start=part.body_start,
        end=part.end,
        content_type=part.content_type,
        is_multipart=part.is_multipart,
        is_message=part.is_message,
        message_body_start=message_body_start,
    )


def _spans(root: ScannedPart) -> list[PartSpan]:
    """RFC 3501 §6.4.5 section numbers for every part."""
    top = _span(root, "")
    spans = [
        PartSpan(
            section="",
            header_start=0,
            body_start=root.body_start,
            end=root.end,
            content_type=top.content_type,
            is_multipart=top.is_multipart,
            is_message=top.is_message,
            message_body_start=top.message_body_start,
        )
    ]
    _number_message(root, "", spans)
    return spans


def _join(prefix: str, index: int) -> str:
    return f"{prefix}.{index}" if prefix else str(index)


def _number_message(message_root: ScannedPart, prefix: str, spans: list[PartSpan]) -> None:
    # A non-multipart message has one part numbered 1; a multipart's children are 1..n.
    if message_root.is_multipart:
        for index, child in enumerate(message_root.children, 1):
            _number_part(child, _join(prefix, index), spans)
    else:
        _number_part(message_root, _join(prefix, 1), spans)


def _number_part(part: ScannedPart, section: str, spans: list[PartSpan]) -> None:
    spans.append(_span(part, section))
    if part.is_multipart:
        for index, child in enumerate(part.children, 1):
            _number_part(child, f"{section}.{index}", spans)
    elif part.is_message and part.children:
        _number_message(part.children[0], section, spans)
