"""FETCH and UID FETCH (RFC 3501 §6.4.5, RFC 7162 §3.1.4.1 CHANGEDSINCE, §3.2.6 VANISHED)."""

from __future__ import annotations

from typing import Final

from gateway.imap.protocol._lexer import (
    LPAREN,
    MAX_NUMBER,
    SP,
    ParseError,
    Reader,
    decode_text,
)
from gateway.imap.protocol.commands import Fetch
from gateway.imap.protocol.fetch_items import FetchAttribute, Section, SectionText, SimpleItem

_ITEM_NAME_CHARS: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789."
)
MAX_SECTION_PARTS: Final = 32

_SIMPLE_ITEMS: Final[dict[str, SimpleItem]] = {
    "UID": "UID",
    "FLAGS": "FLAGS",
    "INTERNALDATE": "INTERNALDATE",
    "RFC822.SIZE": "RFC822.SIZE",
    "ENVELOPE": "ENVELOPE",
    "BODYSTRUCTURE": "BODYSTRUCTURE",
    "BODY": "BODY",
    "MODSEQ": "MODSEQ",
    "RFC822": "RFC822",
    "RFC822.TEXT": "RFC822.TEXT",
}
# RFC 3501 §6.4.5: RFC822.HEADER is BODY.PEEK[HEADER]; RFC822.PEEK is an Outlook spelling
# of BODY.PEEK[] that servers tolerate.
_PEEK_ITEMS: Final[dict[str, SimpleItem]] = {
    "RFC822.HEADER": "RFC822.HEADER",
    "RFC822.PEEK": "RFC822",
}

_FAST: Final = (
    FetchAttribute("FLAGS"),
    FetchAttribute("INTERNALDATE"),
    FetchAttribute("RFC822.SIZE"),
)
# RFC 3501 §6.4.5: the macros, which may not be combined with other items.
_MACROS: Final = {
    "FAST": _FAST,
    "ALL": (*_FAST, FetchAttribute("ENVELOPE")),
    "FULL": (*_FAST, FetchAttribute("ENVELOPE"), FetchAttribute("BODY")),
}

_SECTION_TEXTS: Final[dict[str, SectionText]] = {
    "HEADER": "HEADER",
    "HEADER.FIELDS": "HEADER.FIELDS",
    "HEADER.FIELDS.NOT": "HEADER.FIELDS.NOT",
    "TEXT": "TEXT",
    "MIME": "MIME",
}


def _read_section(reader: Reader) -> Section:
    """RFC 3501 §9 section, after "[": `[1.2.HEADER.FIELDS (From To)]`."""
    if reader.skip_byte(ord("]")):
        return Section()
    components = reader.read_run(_ITEM_NAME_CHARS).decode("ascii").split(".")
    part: list[int] = []
    while components and components[0].isdigit():
        number = int(components.pop(0)) if len(components[0]) <= 10 else 0
        if not 1 <= number <= MAX_NUMBER:
            raise ParseError("bad section part number")
        part.append(number)
    if len(part) > MAX_SECTION_PARTS:
        raise ParseError("section part nested too deeply")
    text: SectionText | None = None
    if components:
        text = _SECTION_TEXTS.get(".".join(components).upper())
        if text is None:
            raise ParseError("bad section")
        if text == "MIME" and not part:
            raise ParseError("MIME needs a section part")  # RFC 3501 §6.4.5
    header_fields: tuple[str, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        reader.expect_space()
        header_fields = tuple(
            reader.read_parenthesised(
                lambda: decode_text(reader.read_astring("header field name")),
                what="header list",
            )
        )
    reader.expect_byte(ord("]"), "']' to close section")
    return Section(part=tuple(part), text=text, header_fields=header_fields)


def _read_partial(reader: Reader) -> tuple[int, int] | None:
    """RFC 3501 §9 `"<" number "." nz-number ">"`."""
    if not reader.skip_byte(ord("<")):
        return None
    origin = reader.read_number(what="partial origin")
    reader.expect_byte(ord("."), "'.' in partial")
    count = reader.read_nz_number("partial length")
    reader.expect_byte(ord(">"), "'>' to close partial")
    return origin, count


def _read_attribute(reader: Reader) -> FetchAttribute:
    name = reader.read_run(_ITEM_NAME_CHARS).decode("ascii").upper()
    if not name:
        raise ParseError("expected fetch item")
    if reader.skip_byte(ord("[")):
        if name not in ("BODY", "BODY.PEEK"):
            raise ParseError(f"unknown fetch item {name}[")
        section = _read_section(reader)
        return FetchAttribute(
            "BODY[]", section=section, partial=_read_partial(reader), peek=name == "BODY.PEEK"
        )
    if name in _SIMPLE_ITEMS:
        return FetchAttribute(_SIMPLE_ITEMS[name])
    if name in _PEEK_ITEMS:
        return FetchAttribute(_PEEK_ITEMS[name], peek=True)
    raise ParseError(f"unknown fetch item {name}")


def _read_attributes(reader: Reader) -> tuple[FetchAttribute, ...]:
    if reader.peek() == LPAREN:
        return tuple(reader.read_parenthesised(lambda: _read_attribute(reader), what="fetch items"))
    macro = _MACROS.get((reader.peek_keyword() or "").upper())
    if macro is not None:
        reader.read_keyword()
        return macro
    return (_read_attribute(reader),)


def parse_fetch(reader: Reader, tag: str, uid: bool) -> Fetch:
    """`[UID] FETCH set items [SP "(" modifier *(SP modifier) ")"]`."""
    reader.expect_space()
    sequence_set = reader.read_sequence_set()
    reader.expect_space()
    attributes = _read_attributes(reader)
    changed_since: int | None = None
    vanished = False
    if reader.skip_byte(SP):

        def read_modifier() -> None:
            nonlocal changed_since, vanished
            name = reader.read_keyword("fetch modifier")
            if name == "CHANGEDSINCE" and changed_since is None:
                reader.expect_space()
                # RFC 7162 §3.1.4.1: mod-sequence-valzer, so CHANGEDSINCE 0 is valid.
                changed_since = reader.read_modseq(allow_zero=True)
            elif name == "VANISHED" and not vanished:
                vanished = True
            else:
                raise ParseError(f"unknown or repeated fetch modifier {name}")

        reader.read_parenthesised(read_modifier, what="fetch modifiers")
    reader.expect_end()
    if vanished and (not uid or changed_since is None):
        # RFC 7162 §3.2.6: VANISHED only in UID FETCH and only with CHANGEDSINCE.
        raise ParseError("VANISHED needs UID FETCH with CHANGEDSINCE")
    return Fetch(
        tag,
        uid=uid,
        sequence_set=sequence_set,
        attributes=attributes,
        changed_since=changed_since,
        vanished=vanished,
    )
