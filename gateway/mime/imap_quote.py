"""IMAP string rendering exactly as Dovecot 2.3 does it (RFC 3501 §4.3, §9).

Dovecot picks quoted strings or literals by fixed rules, and clients or tests that compare
FETCH bytes notice any deviation, so these two functions mirror Dovecot's
``imap_append_nstring`` and ``imap_append_string_for_humans`` (lib-imap/imap-quote.c).
"""

from __future__ import annotations

import re

# Dovecot switches from a quoted string to a literal after this many quoted-specials: a
# literal's "{n}\r\n" overhead is then no worse than the backslashes.
_QUOTED_MAX_ESCAPES = 4
_LWSP = (0x20, 0x09)


_PLAIN_QUOTABLE = re.compile(rb'[^\r\n"\\\x80-\xff]*')
_LWSP_RUN = re.compile(rb"[ \t]+")
_NUL_TO_0X80 = bytes.maketrans(b"\x00", b"\x80")
_NEEDS_CHANGE = re.compile(rb'[\x00\t\r\n"\\\x80-\xff]')


def _literal(value: bytes) -> bytes:
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal (8-bit, CR/LF or more than 4 escapes)."""
    if value is None:
        return b"NIL"
    if _PLAIN_QUOTABLE.fullmatch(value):
        return b'"' + value + b'"'  # the common case: nothing to escape
    # RFC 3501 §9: QUOTED-CHAR excludes CR and LF and (unescaped) DQUOTE and backslash; 8-bit
    # octets are not CHARs at all, so such strings must be sent as literals.
    escapes = value.count(b'"') + value.count(b"\\")
    if escapes > _QUOTED_MAX_ESCAPES or b"\r" in value or b"\n" in value or not value.isascii():
        return _literal(value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nstring_nolf(value: bytes | None) -> bytes:
    """Like :func:`nstring` but CR and LF are dropped first (Dovecot's ``_nolf`` variant)."""
    if value is None:
        return b"NIL"
    return nstring(value.replace(b"\r", b"").replace(b"\n", b""))


def string_for_humans(value: bytes) -> bytes:
    """Subject and display names: whitespace collapsed, CR/LF dropped, NUL becomes 0x80.

    Anything that needs changing, escaping or is 8-bit is sent as a literal; a string that is
    only whitespace becomes ``""``.
    """
    needs_change = _NEEDS_CHANGE.search(value) is not None
    if not needs_change:
        needs_change = b"  " in value or value.startswith(b" ") or value.endswith(b" ")
    if not needs_change:
        return b'"' + value + b'"'
    # CR and LF vanish without ending a whitespace run, runs of SP/TAB become one SP, leading
    # and trailing whitespace goes, NUL becomes 0x80 (as Dovecot's loop does octet by octet).
    collapsed = _LWSP_RUN.sub(b" ", value.replace(b"\r", b"").replace(b"\n", b""))
    out = collapsed.lstrip(b" ").translate(_NUL_TO_0X80)
    if out.endswith(b" "):
        out = out[:-1]
    if not out:
        return b'""'
    return _literal(out)
