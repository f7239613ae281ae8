"""Part offsets for section fetches, JSON persistence, search fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gateway.mime import analyze_message, parts_from_json, parts_to_json

NESTED = (
    b"From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: x@y\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=i\r\n\r\n"
    b"--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>h</b>\r\n--i--\r\n"
    b"--o--\r\n"
)


def _section(raw: bytes, section: str) -> tuple[bytes, bytes]:
    part = analyze_message(raw).find_part(section)
    assert part is not None, section
    return raw[part.header_start : part.body_start], raw[part.body_start : part.end]


def test_sections_follow_rfc3501_numbering() -> None:
    result = analyze_message(NESTED)
    assert [p.section for p in result.parts] == ["", "1", "2", "2.1", "2.2"]
    assert _section(NESTED, "1") == (b"Content-Type: text/plain\r\n\r\n", b"hello")
    assert _section(NESTED, "2.2") == (b"Content-Type: text/html\r\n\r\n", b"<b>h</b>")
    assert _section(NESTED, "2.1")[1] == b"plain"


def test_message_rfc822_part_exposes_embedded_header_and_text() -> None:
    part = analyze_message(NESTED).find_part("2")
    assert part is not None and part.is_message and part.message_body_start is not None
    assert NESTED[part.body_start : part.message_body_start].startswith(b"From: x@y\r\n")
    assert NESTED[part.message_body_start : part.end].startswith(b"--i\r\n")
    # the close delimiter line keeps its CRLF: only a line end *before* "--o" is the outer one's
    assert NESTED[part.message_body_start : part.end].endswith(b"--i--\r\n")


def test_single_part_message_has_section_one_equal_to_body() -> None:
    raw = b"Subject: x\r\n\r\nbody text\r\n"
    root, first = analyze_message(raw).parts
    assert (root.section, first.section) == ("", "1")
    assert raw[first.body_start : first.end] == b"body text\r\n"
    assert root.body_start == first.body_start == raw.index(b"body")


def test_parts_json_round_trip() -> None:
    parts = analyze_message(NESTED).parts
    assert parts_from_json(parts_to_json(parts)) == parts


def test_search_fields() -> None:
    raw = (
        b"Date: Tue, 2 Jan 2024 03:04:05 +0900\r\nMessage-ID:  <id@x>  \r\n"
        b"From: =?utf-8?q?J=C3=B6rg?= <j@x.de>\r\nTo: a@b\r\nCc: c@d\r\nBcc: e@f\r\n"
        b"Subject: =?utf-8?b?w6R0c2No?=\r\n and more\r\n\r\nbody\r\n"
    )
    result = analyze_message(raw)
    assert result.message_id == "<id@x>"
    assert result.sent_date == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9)))
    assert result.subject == "ätsch and more"
    assert result.from_addr == "Jörg <j@x.de>"
    assert (result.to_addr, result.cc_addr, result.bcc_addr) == ("a@b", "c@d", "e@f")
    assert "Subject: ätsch and more" in result.header_text
    assert result.body_text == "body\n"
    assert result.size == len(raw)


def test_missing_or_bad_date() -> None:
    assert analyze_message(b"Subject: x\r\n\r\n").sent_date is None
    assert analyze_message(b"Date: yesterday-ish\r\n\r\n").sent_date is None
    naive = analyze_message(b"Date: Mon, 1 Jan 2024 10:00:00 -0000\r\n\r\n").sent_date
    assert naive == datetime(2024, 1, 1, 10, tzinfo=UTC)
