"""LIST wildcard matching: same answers as a regular expression, in linear time."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.imap.list_pattern import compile_pattern


def reference_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """The old translation to a regular expression: right answers, exponential time."""
    full = pattern if not reference or pattern.startswith("/") else reference + pattern
    parts = [".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in full]
    body = "".join(parts)
    if full[:5].upper() == "INBOX" and not any(c in full[:5] for c in "*%"):
        body = "(?i:INBOX)" + "".join(parts[5:])
    return re.compile(body, re.DOTALL)


_ALPHABET = st.sampled_from(["a", "b", "/", "*", "%", "I", "n", "B", "o", "X", "é"])


@settings(max_examples=400, deadline=None)
@given(
    reference=st.lists(_ALPHABET.filter(lambda c: c not in "*%"), max_size=3).map("".join),
    pattern=st.lists(_ALPHABET, max_size=10).map("".join),
    name=st.lists(_ALPHABET.filter(lambda c: c not in "*%"), max_size=10).map("".join),
)
def test_matches_like_the_regular_expression(reference: str, pattern: str, name: str) -> None:
    expected = reference_regex(reference, pattern).fullmatch(name) is not None
    assert compile_pattern(reference, pattern).matches(name) is expected


def test_inbox_matches_in_any_case_and_other_names_do_not() -> None:
    assert compile_pattern("", "inbox").matches("INBOX")
    assert compile_pattern("", "Inbox/%").matches("INBOX/x")
    assert not compile_pattern("", "sent").matches("Sent")
    assert not compile_pattern("", "%").matches("a/b")
    assert compile_pattern("", "*").matches("a/b")


def test_a_backtracking_pattern_is_matched_in_linear_time() -> None:
    # Issue 13 finding 1: 24 pairs took 19 s with the regex, a 4,001-char pattern never ended.
    names = ["a" * 200 + "/" + "b" * 50, "x" * 255, "INBOX"]
    started = time.perf_counter()
    for pairs in (30, 2000):
        pattern = compile_pattern("", "%*" * pairs + "x")
        for name in names:
            pattern.matches(name)
    slow = compile_pattern("", "%a" * 2000 + "x")
    for name in names:
        slow.matches(name)
    assert time.perf_counter() - started < 0.5
