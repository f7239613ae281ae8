"""A corpus shaped like an everyday mailbox: many small messages, a long tail of attachments.

The shape issue 17 measured on a real-world-like mailbox of 10,000 messages: median ~5 KB,
mean ~27 KB, p90 ~45 KB, ~27 % with attachments (base64), 1 in 1,000 over 1 MB up to ~10 MB,
and every 500th message malformed. Text-only mail is text/plain or multipart/alternative
(plain + HTML). Deterministic for the same (count, seed); CRLF throughout, so Dovecot's sizes
equal the file sizes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

from tests.support.corpus import (
    _attachment,
    _join,
    _multipart,
    _text_part,
    _top_headers,
    malformed_corpus,
)

MALFORMED_EVERY = 500
ATTACHMENT_SHARE = 0.27
LARGE_EVERY = 1000  # one message in this many carries a 1-10 MB attachment
ALTERNATIVE_SHARE = 0.4  # of the text-only messages
# Lognormal sizes (median bytes, sigma), tuned so that the whole corpus has the shape above.
TEXT_SIZE = (3_000, 0.75)
ATTACHMENT_SIZE = (24_000, 1.35)
ATTACHMENT_CAP = 700_000  # ~0.95 MB once base64-encoded


def _lognormal(rng: random.Random, median: int, sigma: float) -> int:
    return int(median * math.exp(rng.gauss(0.0, sigma)))


def _everyday_message(rng: random.Random, index: int) -> bytes:
    text_size = max(200, _lognormal(rng, *TEXT_SIZE))
    if index % LARGE_EVERY == LARGE_EVERY // 2:
        attachment_size = rng.randint(1_000_000, 7_300_000)  # ~10 MB once base64-encoded
    elif rng.random() < ATTACHMENT_SHARE:
        attachment_size = min(ATTACHMENT_CAP, max(300, _lognormal(rng, *ATTACHMENT_SIZE)))
    else:
        attachment_size = 0
    if rng.random() < ALTERNATIVE_SHARE:
        half = max(100, text_size // 2)
        text = _multipart(
            "alternative", [_text_part(rng, half), _text_part(rng, half, "html")], rng
        )
    else:
        text = _text_part(rng, text_size)
    if not attachment_size:
        return _join(_top_headers(rng, index, text[0]), text[1])
    attachment = _attachment(rng, attachment_size)
    while attachment_size > ATTACHMENT_CAP and "text/calendar" in attachment[0][0]:
        attachment = _attachment(rng, attachment_size)  # an invitation ignores the size
    headers, body = _multipart("mixed", [text, attachment], rng)
    return _join(_top_headers(rng, index, headers), body)


def generate_everyday_corpus(count: int, seed: int = 1) -> Iterator[bytes]:
    """`count` messages of the everyday shape, identical for the same (count, seed)."""
    rng = random.Random(seed)
    malformed = [raw for _, raw in malformed_corpus()]
    for index in range(count):
        message_rng = random.Random(rng.getrandbits(64))
        if index % MALFORMED_EVERY == MALFORMED_EVERY - 1:
            yield malformed[(index // MALFORMED_EVERY) % len(malformed)]
        else:
            yield _everyday_message(message_rng, index)


def write_everyday_corpus(directory: Path, count: int, seed: int) -> tuple[int, int]:
    """Write the corpus as numbered files once; returns (count, total bytes)."""
    marker = directory / f"everyday-{count}-{seed}.done"
    if not marker.exists():
        for index, raw in enumerate(generate_everyday_corpus(count, seed)):
            (directory / f"{index:07d}.eml").write_bytes(raw)
        marker.touch()
    files = sorted(directory.glob("*.eml"))
    return len(files), sum(path.stat().st_size for path in files)
