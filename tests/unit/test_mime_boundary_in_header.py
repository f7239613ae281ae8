"""A boundary line inside a header block ends the header, as in Dovecot 2.3.

lib-mail/message-parser.c looks for a boundary of any open multipart before every header line
(a part's MIME header, or the header of a message/rfc822 part's embedded message), so such a
line ends the header and the part, which is then empty. RFC 2046 §5.1.1 gives the line end
before the boundary line to the boundary: our spans leave it at the end of the cut header and
FETCH drops it (gateway/imap/body_sections.py), which is what the recorded answers check.
"""

from __future__ import annotations

import pytest

from gateway.imap.body_sections import MessageParts, fetch_section
from gateway.imap.protocol.fetch_items import Section
from gateway.mime import MessageAnalyzer, analyze_message
from tests.unit.mime_recorded_cases import (
    RECORDED_CASES,
    RECORDED_SECTIONS,
    SECTION_CANDIDATES,
    SECTION_TEXTS,
)

_RAW = {case[0]: case[1] for case in RECORDED_CASES}
MULTIPART = b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"


def _sections(raw: bytes) -> dict[str, bytes]:
    """Every candidate BODY[section] as our FETCH serves it from the analyser's spans."""
    parts = MessageParts(analyze_message(raw).parts, len(raw))
    answers: dict[str, bytes] = {}
    for number in SECTION_CANDIDATES:
        numbers = tuple(int(piece) for piece in number.split("."))
        for text in SECTION_TEXTS:
            section = Section(part=numbers, text=text or None)  # type: ignore[arg-type]
            answers[f"{number}.{text}" if text else number] = fetch_section(
                parts, section, lambda start, end: raw[start:end]
            )
    return answers


@pytest.mark.parametrize("name", list(RECORDED_SECTIONS))
def test_sections_match_recorded_dovecot_answer(name: str) -> None:
    raw = _RAW[name]
    expected = {key: RECORDED_SECTIONS[name].get(key, b"") for key in _sections(raw)}
    assert _sections(raw) == expected


@pytest.mark.parametrize("name", list(RECORDED_SECTIONS))
@pytest.mark.parametrize("chunk_size", [2, 3, 5, 7, 64])
def test_chunked_input_gives_the_same_result(name: str, chunk_size: int) -> None:
    raw = _RAW[name]
    analyzer = MessageAnalyzer()
    for start in range(0, len(raw), chunk_size):
        analyzer.feed(raw[start : start + chunk_size])
    assert analyzer.finish() == analyze_message(raw)


def test_cut_part_is_empty_and_ends_at_the_boundary_line() -> None:
    raw = MULTIPART + b"--o\r\nContent-Type: text/html\r\nX-A: 1\r\n--o\r\n\r\nnext\r\n--o--\r\n"
    part = analyze_message(raw).find_part("1")
    assert part is not None
    cut = raw.index(b"--o\r\n\r\nnext")
    assert raw[part.header_start : part.body_start] == b"Content-Type: text/html\r\nX-A: 1\r\n"
    assert part.body_start == part.end == cut
    second = analyze_message(raw).find_part("2")
    assert second is not None and raw[second.body_start : second.end] == b"next"


def test_cut_embedded_header_ends_the_message_rfc822_part() -> None:
    raw = MULTIPART + b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n--o--\r\n"
    result = analyze_message(raw)
    part = result.find_part("1")
    assert part is not None and part.is_message
    assert raw[part.body_start : part.end] == b"Subject: in\r\n"
    assert part.message_body_start == part.end  # the embedded message has no text
    assert result.envelope  # the outer header is untouched
    assert b'(NIL "in" NIL NIL NIL NIL NIL NIL NIL NIL)' in result.bodystructure


def test_cut_multipart_header_opens_no_boundary_scope() -> None:
    # The inner multipart reuses the outer boundary; its header is cut before its blank line,
    # so "--o" stays the outer boundary and the inner multipart has no children.
    raw = (
        MULTIPART + b"--o\r\nContent-Type: multipart/mixed; boundary=o\r\n--o\r\n\r\nx\r\n--o--\r\n"
    )
    result = analyze_message(raw)
    assert [span.section for span in result.parts] == ["", "1", "2"]
    inner = result.find_part("1")
    assert inner is not None and inner.is_multipart and inner.body_start == inner.end


def test_bare_lf_header_cut() -> None:
    raw = MULTIPART + b"--o\r\nContent-Type: text/plain\n--o--\n"
    part = analyze_message(raw).find_part("1")
    assert part is not None
    assert raw[part.header_start : part.body_start] == b"Content-Type: text/plain\n"
    assert part.body_start == part.end == raw.index(b"--o--")


def test_root_header_has_no_boundary_to_stop_at() -> None:
    raw = b"Subject: s\r\n--o\r\nFrom: a@b\r\n\r\nbody\r\n"
    result = analyze_message(raw)
    assert result.parts[0].body_start == raw.index(b"body")


def test_over_long_boundary_line_split_across_chunks() -> None:
    # The next part starts after the boundary line's line end, however the line was fed.
    raw = MULTIPART + b"--o" + b"x" * 70_000 + b"\r\nX: 1\r\n\r\nbody\r\n--o--\r\n"
    analyzer = MessageAnalyzer()
    for start in range(0, len(raw), 4096):
        analyzer.feed(raw[start : start + 4096])
    result = analyzer.finish()
    assert result == analyze_message(raw)
    part = result.find_part("1")
    assert part is not None
    assert raw[part.header_start : part.body_start] == b"X: 1\r\n\r\n"
    assert raw[part.body_start : part.end] == b"body"
