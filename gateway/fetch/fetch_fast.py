"""A fast path for the FETCH responses a sync reads by the thousand (sans-IO).

IMAPClient's general parser tokenises every response in Python, one token object at a time;
for a first sync that is most of the CPU spent on the wire (`UID FETCH 1:* (RFC822.SIZE FLAGS
INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])` and `BODY.PEEK[]` for every message).
The responses a server sends for those are flat: numbers, atoms, a quoted date, a list of
flags, a literal. This module reads exactly that shape from imaplib's response items and
returns what IMAPClient's `parse_fetch_response(data, False, True)` would; anything else
(nested lists, escapes in quoted strings, a response without UID) returns None so that the
caller falls back to IMAPClient's parser, which stays the authority on the grammar.
"""

from __future__ import annotations

import re
from typing import Any

from imapclient.datetime_util import parse_to_datetime

FetchResult = dict[int, dict[bytes, Any]]

# One token of a flat FETCH attribute list: a parenthesis, a quoted string without escapes,
# a literal marker (only ever at the end of a line imaplib split off), or an atom, which may
# carry a section spec such as BODY[HEADER.FIELDS (MESSAGE-ID)] and a partial <origin>.
# Characters IMAPClient's lexer treats specially outside brackets (and control characters)
# end an atom; a response holding them falls back to IMAPClient.
_TOKEN = re.compile(
    rb" *(?:(\()|(\))|\"([^\"\\]*)\"|(?<= )\{(\d+)\}\Z"
    rb"|([^ ()\"{}\[\]%\x00-\x1f]+(?:\[[^\]\x00-\x1f]*\](?:<\d+>)?)?))"
)
_HEAD = re.compile(rb"(\d+) \(")


def parse_flat_fetch(data: list[Any]) -> FetchResult | None:
    """FETCH responses keyed by UID, or None when they are not of the flat shape."""
    result: FetchResult = {}
    pieces: list[tuple[bytes, bytes | None]] = []
    for item in data:
        # imaplib gives a response with literals as (text up to {n}, literal) tuples, then
        # the rest of the line after the last literal as bytes.
        if isinstance(item, tuple) and len(item) == 2:
            pieces.append((item[0], item[1]))
            continue
        if not isinstance(item, bytes):
            return None
        pieces.append((item, None))
        parsed = _parse_one(pieces)
        if parsed is None:
            return None
        uid, values = parsed
        result.setdefault(uid, {}).update(values)
        pieces = []
    return None if pieces else result


class _Mark:
    """A parenthesis in the token stream (values themselves are bytes, int or None)."""


_OPEN = _Mark()
_CLOSE = _Mark()


def _parse_one(pieces: list[tuple[bytes, bytes | None]]) -> tuple[int, dict[bytes, Any]] | None:
    head = _HEAD.match(pieces[0][0])
    if head is None:
        return None
    tokens: list[Any] = []
    position = head.end()
    for text, literal in pieces:
        if not _tokenize(text, position, literal, tokens):
            return None
        position = 0
    if not tokens or tokens[-1] is not _CLOSE:
        return None
    values: dict[bytes, Any] = {b"SEQ": int(head.group(1))}
    uid: int | None = None
    index, end = 0, len(tokens) - 1
    while index < end:
        name = tokens[index]
        if not isinstance(name, bytes) or index + 1 >= end:
            return None
        value = tokens[index + 1]
        index += 2
        if value is _OPEN:
            flat: list[Any] = []
            while index < end and isinstance(tokens[index], bytes | int):
                flat.append(tokens[index])
                index += 1
            if index >= end or tokens[index] is not _CLOSE:
                return None
            index += 1
            value = tuple(flat)
        elif value is _CLOSE:
            return None
        key = name.upper()
        if key == b"UID":
            if not isinstance(value, int):
                return None
            uid = value
        elif key == b"INTERNALDATE":
            values[key] = _internal_date(value)
        elif key in (b"BODY", b"BODYSTRUCTURE", b"ENVELOPE"):
            return None  # structured values: IMAPClient's business
        else:
            values[key] = value
    if uid is None:
        return None
    return uid, values


def _tokenize(text: bytes, position: int, literal: bytes | None, tokens: list[Any]) -> bool:
    """Append the tokens of one piece; a piece with a literal must end in its `{n}` marker."""
    length = len(text)
    while position < length:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            return False
        position = match.end()
        opening, closing, quoted, marker, atom = match.groups()
        if opening is not None:
            tokens.append(_OPEN)
        elif closing is not None:
            tokens.append(_CLOSE)
        elif quoted is not None:
            tokens.append(quoted)
        elif marker is not None:
            if literal is None or int(marker) != len(literal):
                return False
            tokens.append(literal)
            literal = None
        elif atom is not None:
            tokens.append(_atom_value(atom))
    return literal is None


def _atom_value(atom: bytes) -> bytes | int | None:
    # As IMAPClient: digits are a number unless a leading zero says otherwise ("007" is a
    # keyword, not 7).
    if atom.isdigit() and (atom[:1] != b"0" or len(atom) == 1):
        return int(atom)
    return None if atom == b"NIL" else atom


def _internal_date(value: Any) -> Any:
    if not isinstance(value, bytes):
        return None
    try:
        return parse_to_datetime(value, normalise=False)
    except ValueError:
        return None
