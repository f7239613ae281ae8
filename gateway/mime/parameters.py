"""MIME parameter lists (RFC 2045 §5.1) with RFC 2231 continuations merged as Dovecot does.

Dovecot joins ``name*0``/``name*1`` continuations but does not decode charsets: an extended
value stays ``charset'lang'%XX`` under the key ``name*`` (lib-mail/rfc2231-parser.c).
BODYSTRUCTURE shows those strings verbatim, so we keep them verbatim too.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mime.rfc822_lexer import NUL_REPLACEMENT, Rfc822Lexer


@dataclass
class _Continuation:
    key: bytes
    value: bytes
    index: int
    extended: bool


def parse_parameters(lexer: Rfc822Lexer) -> list[tuple[bytes, bytes]]:
    """Parse ``; key=value`` pairs from the lexer's position to the end of the value."""
    previous_replacement = lexer.nul_replacement
    lexer.nul_replacement = NUL_REPLACEMENT
    plain: list[tuple[bytes, bytes]] = []
    continuations: list[_Continuation] = []
    # Dovecot reuses one struct for every starred key and only resets the index when digits
    # follow the star, so "a*0=x; b*=y" gives b index 0 but "a*1=x; b*=y" gives b index 1.
    index = 0
    while True:
        status, key, value = lexer.parse_content_param()
        if status == 0:
            break
        if status < 0:
            # A broken parameter: skip one octet and try again (Dovecot does the same, which
            # usually discards the rest of the list).
            if lexer.pos >= lexer.end:
                break
            lexer.pos += 1
            continue
        star = key.find(b"*")
        if star < 0:
            plain.append((key, value))
            continue
        rest = key[star + 1 :]
        if rest:
            index = 0
            digits = 0
            while digits < len(rest) and 0x30 <= rest[digits] <= 0x39:
                index = index * 10 + rest[digits] - 0x30
                digits += 1
            rest = rest[digits:]
        else:
            rest = key[star:]
        extended = rest.startswith(b"*")
        if extended:
            rest = rest[1:]
        if rest:
            plain.append((key, value))
        else:
            continuations.append(_Continuation(key[:star], value, index, extended))
    lexer.nul_replacement = previous_replacement
    if not continuations:
        return plain
    return plain + _merge_continuations(continuations)


def _merge_continuations(items: list[_Continuation]) -> list[tuple[bytes, bytes]]:
    # RFC 2231 §3: sections of one parameter are numbered from 0 without gaps; Dovecot keeps
    # an incomplete set as separate "key*N" entries instead of guessing.
    items.sort(key=lambda item: (item.key, item.index))
    result: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(items):
        j = i
        complete = True
        any_extended = False
        expected = 0
        while j < len(items) and items[j].key.lower() == items[i].key.lower():
            if items[j].index != expected:
                complete = False
            any_extended = any_extended or items[j].extended
            expected += 1
            j += 1
        group = items[i:j]
        if not complete:
            for item in group:
                suffix = b"*%d*" % item.index if item.extended else b"*%d" % item.index
                result.append((item.key + suffix, item.value))
        else:
            value = bytearray()
            if not group[0].extended and any_extended:
                value += b"''"
            for item in group:
                if not item.extended and any_extended:
                    value += item.value.replace(b"%", b"%25")
                else:
                    value += item.value
            key = group[0].key + (b"*" if any_extended else b"")
            result.append((key, bytes(value)))
        i = j
    return result
