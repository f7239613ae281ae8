"""ENVELOPE / BODYSTRUCTURE / BODY of tricky messages equal Dovecot's recorded answers."""

from __future__ import annotations

import pytest

from gateway.mime import MessageAnalyzer, analyze_message
from tests.unit.mime_recorded_cases import RECORDED_CASES


@pytest.mark.parametrize(
    ("raw", "envelope", "bodystructure", "body"),
    [case[1:] for case in RECORDED_CASES],
    ids=[case[0] for case in RECORDED_CASES],
)
def test_matches_recorded_dovecot_answer(
    raw: bytes, envelope: bytes, bodystructure: bytes, body: bytes
) -> None:
    result = analyze_message(raw)
    assert result.envelope == envelope
    assert result.bodystructure == bodystructure
    assert result.body == body


@pytest.mark.parametrize(
    "raw", [case[1] for case in RECORDED_CASES], ids=[c[0] for c in RECORDED_CASES]
)
def test_one_byte_chunks_give_the_same_result(raw: bytes) -> None:
    analyzer = MessageAnalyzer()
    for index in range(len(raw)):
        analyzer.feed(raw[index : index + 1])
    assert analyzer.finish() == analyze_message(raw)


def test_envelope_field_order_and_defaults() -> None:
    raw = (
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nSubject: hi\r\nFrom: A <a@x.org>\r\n"
        b"To: b@y.org\r\nCc: c@z.org\r\nBcc: d@w.org\r\nIn-Reply-To: <p@x>\r\n"
        b"Message-ID: <m@x>\r\n\r\nbody\r\n"
    )
    # RFC 3501 §7.4.2: sender and reply-to default to from
    assert analyze_message(raw).envelope == (
        b'("Mon, 1 Jan 2024 10:00:00 +0000" "hi" (("A" NIL "a" "x.org")) (("A" NIL "a" "x.org"))'
        b' (("A" NIL "a" "x.org")) ((NIL NIL "b" "y.org")) ((NIL NIL "c" "z.org"))'
        b' ((NIL NIL "d" "w.org")) "<p@x>" "<m@x>")'
    )


def test_last_envelope_header_wins_first_content_header_wins() -> None:
    raw = (
        b"Subject: first\r\nSubject: second\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html\r\nContent-Type: image/png\r\n\r\nx"
    )
    result = analyze_message(raw)
    assert result.envelope.startswith(b'(NIL "second" ')
    assert result.body.startswith(b'("text" "html"')
