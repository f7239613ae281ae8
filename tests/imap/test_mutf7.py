"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.imap.protocol.mutf7 import MailboxNameError, decode_mailbox_name, encode_mailbox_name

PAIRS = [
    ("INBOX", "INBOX"),
    ("", ""),
    ("&", "&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("&&", "&-&-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    # RFC 3501 §5.1.3 example
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("日本語/メール", "&ZeVnLIqe-/&MOEw,DDr-"),
    ("Корзина", "&BBoEPgRABDcEOAQ9BDA-"),
    ("😀", "&2D3eAA-"),
    ("a\tb", "a&AAk-b"),
    ("\x7f", "&AH8-"),
    ("é&ü", "&AOk-&-&APw-"),
]


@pytest.mark.parametrize(("name", "wire"), PAIRS)
def test_encode_and_decode(name: str, wire: str) -> None:
    assert encode_mailbox_name(name) == wire
    assert decode_mailbox_name(wire) == name


MALFORMED = [
    "&",  # unterminated
    "&Jjo",  # unterminated run
    "Foo&U,BTFw",  # unterminated run at the end
    "&Jjo!",  # bad character in a run
    "&AGE-",  # encoded printable ASCII "a"
    "&ACY-",  # encoded "&"
    "&AGEAYg-",  # encoded "ab"
    "&AGE-&AGI-",  # adjacent shifts
    "&U,BTFw-&ZeVnLIqe-",  # adjacent shifts of non-ASCII text
    "&U,BTF2-",  # non-zero padding bits
    "&U,BTFw0-",  # a spare base64 character
    "&AOkA-",  # odd number of octets
    "&A-",  # one base64 character is not even an octet
    "&2D0-",  # lone high surrogate
    "&3gA-",  # lone low surrogate
    "&2D3YPQ-",  # high surrogate followed by high surrogate
    "&AAA-",  # NUL
    "Entwürfe",  # raw 8-bit
    "a\tb",  # raw control character
    "&U/BTFw-",  # "/" instead of ","
    "&U,BTFw==-",  # padding
]


@pytest.mark.parametrize("wire", MALFORMED)
def test_malformed_names_are_refused(wire: str) -> None:
    with pytest.raises(MailboxNameError):
        decode_mailbox_name(wire)


def test_mailbox_name_error_is_a_value_error() -> None:
    assert issubclass(MailboxNameError, ValueError)


def test_unpaired_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(MailboxNameError):
        encode_mailbox_name("bad\ud800name")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_round_trip(name: str) -> None:
    wire = encode_mailbox_name(name)
    assert wire.isascii()
    assert all(" " <= char <= "~" for char in wire)
    assert decode_mailbox_name(wire) == name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="&-ABCDEFabcdef0123456789+,/=!~ "))
def test_decode_either_returns_the_canonical_form_or_refuses(wire: str) -> None:
    try:
        name = decode_mailbox_name(wire)
    except MailboxNameError:
        return
    assert encode_mailbox_name(name) == wire
