"""The analyser is total (never raises) and streams in bounded memory."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mime import MessageAnalyzer, analyze_message
from tests.support.corpus import generate_corpus, large_attachment, malformed_corpus

_SEEDS = list(generate_corpus(20, seed=5, max_size=20_000)) + [raw for _, raw in malformed_corpus()]
_MIME_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"--b",
    b"--b--",
    b":",
    b";",
    b"=",
    b'"',
    b"\\",
    b"(",
    b")",
    b"<",
    b">",
    b"@",
    b",",
    b"\x00",
    b"\xff",
    b" ",
    b"\t",
    b"=?utf-8?b?",
    b"?=",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"MIME-Version: 1.0\r\n",
    b"From: ",
    b"Subject: ",
    b"name*0*=",
    b"Content-Disposition: ",
]


def _check_consistent(raw: bytes) -> None:
    result = analyze_message(raw)
    assert result.size == len(raw)
    for part in result.parts:
        assert 0 <= part.header_start <= part.body_start <= part.end <= len(raw)
    assert result.bodystructure.startswith(b"(") and result.bodystructure.endswith(b")")
    assert result.envelope.startswith(b"(") and result.envelope.endswith(b")")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _check_consistent(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_MIME_TOKENS) | st.binary(max_size=8), max_size=80))
def test_mime_shaped_noise_never_raises(tokens: list[bytes]) -> None:
    _check_consistent(b"".join(tokens))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(_MIME_TOKENS)), max_size=12),
    st.integers(0, 10**6),
)
def test_mutated_real_messages_never_raise(
    seed: bytes, insertions: list[tuple[int, bytes]], cut: int
) -> None:
    raw = bytearray(seed)
    for position, token in insertions:
        position %= len(raw) + 1
        raw[position:position] = token
    raw = raw[: cut % (len(raw) + 1)] if cut % 3 == 0 else raw
    _check_consistent(bytes(raw))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(st.sampled_from(_SEEDS), st.randoms(use_true_random=False))
def test_chunking_never_changes_the_result(raw: bytes, rng: random.Random) -> None:
    analyzer = MessageAnalyzer()
    pos = 0
    while pos < len(raw):
        step = rng.choice([1, 2, 3, 7, 64, 1000, 70_000])
        analyzer.feed(raw[pos : pos + step])
        pos += step
    assert analyzer.finish() == analyze_message(raw)


def test_crlf_split_across_chunks_before_boundary() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\n\r\nabc\r\n--x--\r\n"
    )
    split = raw.index(b"abc\r") + 4  # between CR and LF
    analyzer = MessageAnalyzer()
    analyzer.feed(raw[:split])
    analyzer.feed(raw[split:])
    assert analyzer.finish().body == analyze_message(raw).body
    assert b'"7bit" 3 0)' in analyze_message(raw).body


def test_huge_line_and_header_are_handled() -> None:
    raw = b"Subject: " + b"a" * 2_000_000 + b"\r\n\r\n--x" + b"b" * 1_000_000
    result = analyze_message(raw)
    assert result.size == len(raw)
    assert result.parts[0].body_start == raw.index(b"\r\n\r\n") + 4


def test_25_mb_attachment_in_bounded_memory() -> None:
    raw = large_attachment(25 * 1024 * 1024)
    chunk = 256 * 1024
    tracemalloc.start()
    try:
        analyzer = MessageAnalyzer()
        for pos in range(0, len(raw), chunk):
            analyzer.feed(raw[pos : pos + chunk])
        result = analyzer.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert result.size == len(raw)
    assert b'("application" "octet-stream" ("name" "big.bin") NIL NIL "base64" ' in result.body
