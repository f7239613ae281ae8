"""The flat FETCH fast path agrees with IMAPClient's parser, or steps aside (returns None)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response

from gateway.fetch.fetch_fast import parse_flat_fetch

HEADER = b"Message-ID: <a@b>\r\n\r\n"

# Shapes as imaplib hands them over: (text up to {n}, literal) tuples, then the line's rest.
SAME_AS_IMAPCLIENT: list[list[Any]] = [
    [
        b"1 (UID 7 RFC822.SIZE 1234 FLAGS (\\Seen $Forwarded) "
        b'INTERNALDATE "06-Dec-2026 05:00:00 +0100")'
    ],
    [
        (
            b'1 (UID 7 RFC822.SIZE 1234 FLAGS () INTERNALDATE "06-Dec-2026 05:00:00 +0000" '
            b"BODY[HEADER.FIELDS (MESSAGE-ID)] {21}",
            HEADER,
        ),
        b")",
        (b"2 (UID 9 RFC822.SIZE 5 FLAGS (\\Flagged) BODY[HEADER.FIELDS (MESSAGE-ID)] {2}", b"\r\n"),
        b")",
    ],
    [(b"3 (UID 12 BODY[] {5}", b"hello"), b")"],
    [(b"3 (UID 12 BODY[]<0> {5}", b"hello"), b" FLAGS (\\Seen))"],
    [(b"3 (BODY[] {5}", b"hello"), b" UID 12)"],
    [b"4 (UID 1 MODSEQ (123456789012) FLAGS (\\Answered))"],
    [b"5 (FLAGS (\\Seen) UID 3)", b"6 (UID 4 FLAGS ())"],
    [b'7 (UID 4 INTERNALDATE "not a date")'],
    [b"8 (UID 4 X-GM-LABELS NIL)"],
    [(b"9 (UID 5 BODY[] {0}", b""), b")"],
    [b"10 (UID 6 FLAGS (007 $Label1) X-COUNT 0)"],  # "007" stays a keyword, 0 a number
    [],
]

STEP_ASIDE: list[list[Any]] = [
    [b"1 (FLAGS (\\Seen))"],  # no UID: an unsolicited update
    [b'1 (UID 2 ENVELOPE ("date" "subj" NIL NIL NIL NIL NIL NIL NIL NIL))'],
    [b'1 (UID 2 X-NAME "with \\" escape")'],
    [b"1 (UID 2 X-NESTED ((a b) c))"],
    [(b"1 (UID 2 BODY[] {9}", b"short"), b")"],  # literal length disagrees
    [(b"1 (UID 2 BODY[] {5}", b"hello")],  # line never finished
    [b"1 (UID 2 FLAGS (\\Seen)"],  # unbalanced
    [b"garbage"],
    [None],
    [b"1 (UID 2 FLAGS (a%b))"],  # IMAPClient's lexer splits at %
    [b"1 (UID 2 FLAGS (a\tb))"],  # ...and at control characters
    [(b"1 (UID 2 BODY[]{5}", b"hello"), b")"],  # no space before the literal: IMAPClient refuses
]


def _imapclient(data: list[Any]) -> dict[int, dict[bytes, Any]]:
    return {int(uid): values for uid, values in parse_fetch_response(data, False, True).items()}


@pytest.mark.parametrize("data", SAME_AS_IMAPCLIENT)
def test_flat_responses_parse_as_imapclient_does(data: list[Any]) -> None:
    fast = parse_flat_fetch(data)
    assert fast is not None
    assert fast == _imapclient(data)


@pytest.mark.parametrize("data", STEP_ASIDE)
def test_other_shapes_are_left_to_imapclient(data: list[Any]) -> None:
    assert parse_flat_fetch(data) is None


_name = st.from_regex(rb"\A[A-Za-z$\\][A-Za-z0-9$._-]{0,8}\Z")
_atom = st.from_regex(rb"\A[A-Za-z0-9$\\][A-Za-z0-9$._-]{0,8}\Z")  # keywords: "007" too
_value = st.one_of(
    st.integers(0, 2**40).map(lambda n: str(n).encode()),
    st.from_regex(rb"\A0[0-9]{1,4}\Z"),
    _atom,
    st.from_regex(rb'\A"[A-Za-z0-9 :+-]{0,20}"\Z'),
    st.lists(_atom, max_size=4).map(lambda xs: b"(" + b" ".join(xs) + b")"),
    st.just(b"NIL"),
)


@given(
    seq=st.integers(1, 10**6),
    uid=st.integers(1, 2**32 - 1),
    items=st.lists(st.tuples(_name, _value), max_size=5),
    literal=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_random_flat_responses_agree(
    seq: int, uid: int, items: list[tuple[bytes, bytes]], literal: bytes | None
) -> None:
    names = {name.upper() for name, _ in items}
    if names & {b"UID", b"BODY", b"BODYSTRUCTURE", b"ENVELOPE", b"INTERNALDATE"}:
        return
    text = b"%d (UID %d" % (seq, uid) + b"".join(b" " + n + b" " + v for n, v in items)
    data: list[Any] = (
        [text + b")"]
        if literal is None
        else [(text + b" BODY[] {%d}" % len(literal), literal), b")"]
    )
    assert parse_flat_fetch(data) == _imapclient(data)


@given(st.lists(st.one_of(st.binary(max_size=60), st.tuples(st.binary(), st.binary()))))
def test_random_input_never_raises(data: list[Any]) -> None:
    parse_flat_fetch(data)
