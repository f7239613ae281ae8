"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["MailboxNameError", "decode_mailbox_name", "encode_mailbox_name"]

# RFC 3501 §5.1.3: the modified BASE64 of RFC 2152 with "," in place of "/".
_ALTCHARS = b"+,"
_SHIFTED_RUN = re.compile(r"&([A-Za-z0-9+,]*)(-?)")


class MailboxNameError(ValueError):
    """A mailbox name that is not valid modified UTF-7 (or cannot be encoded as such)."""


def _is_direct(char: str) -> bool:
    # RFC 3501 §5.1.3: 0x20-0x25 and 0x27-0x7e represent themselves; "&" is written "&-".
    return " " <= char <= "~"


def _encode_run(run: str) -> str:
    try:
        utf16 = run.encode("utf-16-be")
    except UnicodeEncodeError as error:
        raise MailboxNameError(f"mailbox name contains an unpaired surrogate: {error}") from None
    return "&" + base64.b64encode(utf16, altchars=_ALTCHARS).rstrip(b"=").decode("ascii") + "-"


def encode_mailbox_name(name: str) -> str:
    """Encode a Unicode mailbox name for the wire."""
    pieces: list[str] = []
    run: list[str] = []
    for char in name:
        if _is_direct(char):
            if run:
                pieces.append(_encode_run("".join(run)))
                run.clear()
            pieces.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        pieces.append(_encode_run("".join(run)))
    return "".join(pieces)


def _decode_run(encoded: str) -> str:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        utf16 = base64.b64decode(padded, altchars=_ALTCHARS, validate=True)
    except binascii.Error:
        raise MailboxNameError(f"bad modified BASE64 in mailbox name: &{encoded}-") from None
    # Only the shortest encoding is allowed: no spare characters and zero padding bits.
    canonical = base64.b64encode(utf16, altchars=_ALTCHARS).rstrip(b"=").decode("ascii")
    if canonical != encoded or len(utf16) % 2:
        raise MailboxNameError(f"non-canonical modified BASE64 in mailbox name: &{encoded}-")
    try:
        text = utf16.decode("utf-16-be")
    except UnicodeDecodeError:
        raise MailboxNameError(f"bad UTF-16 in mailbox name: &{encoded}-") from None
    if any(_is_direct(char) for char in text):
        # RFC 3501 §5.1.3: printable US-ASCII must represent itself.
        raise MailboxNameError(f"printable ASCII encoded in mailbox name: &{encoded}-")
    if "\x00" in text:
        # Not forbidden by RFC 3501, but no store can hold it and no client needs it.
        raise MailboxNameError("mailbox name contains NUL")
    return text


def decode_mailbox_name(wire: str) -> str:
    """Decode a mailbox name as received on the wire; malformed names raise MailboxNameError."""
    pieces: list[str] = []
    position = 0
    previous_was_run = False
    while position < len(wire):
        char = wire[position]
        if char != "&":
            if not _is_direct(char):
                raise MailboxNameError(f"mailbox name contains a raw character {char!r}")
            pieces.append(char)
            position += 1
            previous_was_run = False
            continue
        match = _SHIFTED_RUN.match(wire, position)
        if match is None or not match.group(2):
            raise MailboxNameError("unterminated '&' in mailbox name")
        encoded = match.group(1)
        if not encoded:
            pieces.append("&")
            previous_was_run = False
        else:
            if previous_was_run:
                # RFC 3501 §5.1.3: "&AGE-&AGI-" must be written as one run.
                raise MailboxNameError("adjacent encoded runs in mailbox name")
            pieces.append(_decode_run(encoded))
            previous_was_run = True
        position = match.end()
    return "".join(pieces)
