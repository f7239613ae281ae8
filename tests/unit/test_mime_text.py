"""Decoded subjects, addresses and body text for SEARCH, Japanese included."""

from __future__ import annotations

import base64
from email.header import Header

from gateway.mime import analyze_message
from gateway.mime.text_decode import decode_header_value
from tests.support.corpus import crlf, malformed_corpus

JAPANESE = "日本語の件名です"


def _subject_of(header_value: str) -> str:
    return analyze_message(crlf(f"Subject: {header_value}\nFrom: a@b\n\nx\n".encode())).subject


def test_iso_2022_jp_subject() -> None:
    assert _subject_of(Header(JAPANESE, "iso-2022-jp").encode()) == JAPANESE


def test_shift_jis_subject() -> None:
    encoded = base64.b64encode(JAPANESE.encode("shift_jis")).decode()
    assert _subject_of(f"=?Shift_JIS?B?{encoded}?=") == JAPANESE


def test_utf8_subject_split_inside_a_character() -> None:
    data = JAPANESE.encode()
    first, second = base64.b64encode(data[:4]).decode(), base64.b64encode(data[4:]).decode()
    # RFC 2047 §6.2: adjacent words are joined (without the space) before charset decoding
    assert _subject_of(f"=?utf-8?b?{first}?=\n =?utf-8?b?{second}?=") == JAPANESE


def test_raw_8bit_and_broken_words_never_fail() -> None:
    assert decode_header_value("Grüße".encode()) == "Grüße"
    assert decode_header_value("caf\xe9".encode("latin-1")) == "café"
    assert decode_header_value(b"=?unknown-cs?q?abc?= =?utf-8?b?!!!?=") == "abc"
    assert decode_header_value(b"=?utf-8?q?a_b=ZZ?=") == "a b=ZZ"


def test_iso_2022_jp_body_text() -> None:
    raw = dict(malformed_corpus())["iso_2022_jp_body"]
    assert "日本語のメールです" in analyze_message(raw).body_text


def test_body_text_decodes_transfer_encodings_of_text_parts_only() -> None:
    text_b64 = base64.encodebytes("Grüße aus Köln".encode()).decode()
    raw = crlf(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=z\n\n"
        "--z\nContent-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n\nsoft =\nbreak caf=E9\n"
        "--z\nContent-Type: text/html; charset=utf-8\n"
        f"Content-Transfer-Encoding: base64\n\n{text_b64}"
        "--z\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        "c2VjcmV0\n--z--\n"
    )
    text = analyze_message(raw).body_text
    assert "soft break café" in text
    assert "Grüße aus Köln" in text
    assert "secret" not in text


def test_body_text_is_capped() -> None:
    raw = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 200_000
    assert len(analyze_message(raw).body_text) <= 1024 * 1024
