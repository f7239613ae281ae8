"""LIST (RFC 3501 §6.3.8, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154) and LSUB."""

from __future__ import annotations

from typing import Final, get_args

from gateway.imap.protocol._arguments import read_list_pattern, read_reference
from gateway.imap.protocol._lexer import LPAREN, SP, ParseError, Reader
from gateway.imap.protocol.commands import List, Lsub, StatusItem

_STATUS_ITEMS: Final[dict[str, StatusItem]] = {item: item for item in get_args(StatusItem)}

# RFC 5258 §3.1 and RFC 6154 §5.1 selection options; §3.2 and RFC 6154 §5.2 return options.
_SELECTION_OPTIONS: Final = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_RETURN_OPTIONS: Final = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
# RFC 5258 §3.1: RECURSIVEMATCH needs a selection option it can modify.
_BASE_SELECTION_OPTIONS: Final = frozenset({"SUBSCRIBED", "SPECIAL-USE"})
MAX_LIST_PATTERNS: Final = 64


def read_status_items(reader: Reader) -> tuple[StatusItem, ...]:
    """RFC 3501 §9 `"(" status-att *(SP status-att) ")"` (plus RFC 7162 / RFC 8438 items)."""

    def read_item() -> StatusItem:
        item = reader.read_keyword("status item")
        if item not in _STATUS_ITEMS:
            raise ParseError(f"unknown status item {item}")
        return _STATUS_ITEMS[item]

    return tuple(reader.read_parenthesised(read_item, what="status items"))


def _read_options(reader: Reader, allowed: frozenset[str], what: str) -> frozenset[str]:
    def read_option() -> str:
        option = reader.read_keyword(what)
        if option not in allowed:
            # RFC 5258 §3: unrecognised options are a BAD.
            raise ParseError(f"unknown LIST {what} {option}")
        return option

    return frozenset(reader.read_parenthesised(read_option, allow_empty=True, what=what))


def _read_return(reader: Reader) -> tuple[frozenset[str], tuple[str, ...] | None]:
    options: set[str] = set()
    status_items: tuple[str, ...] | None = None

    def read_option() -> None:
        nonlocal status_items
        option = reader.read_keyword("return option")
        if option == "STATUS" and status_items is None:
            reader.expect_space()
            status_items = read_status_items(reader)  # RFC 5819 §2
        elif option in _RETURN_OPTIONS:
            options.add(option)
        else:
            raise ParseError(f"unknown or repeated LIST return option {option}")

    reader.read_parenthesised(read_option, allow_empty=True, what="return options")
    return frozenset(options), status_items


def parse_list(reader: Reader, tag: str) -> List:
    """`LIST [SP selection] SP reference SP (pattern / "(" patterns ")") [SP RETURN (...)]`."""
    extended = False
    selection: frozenset[str] = frozenset()
    reader.expect_space()
    if reader.peek() == LPAREN:
        extended = True
        selection = _read_options(reader, _SELECTION_OPTIONS, "selection option")
        if "RECURSIVEMATCH" in selection and not selection & _BASE_SELECTION_OPTIONS:
            raise ParseError("RECURSIVEMATCH needs another selection option")
        reader.expect_space()
    reference = read_reference(reader)
    reader.expect_space()
    if reader.peek() == LPAREN:
        extended = True
        patterns = tuple(
            reader.read_parenthesised(lambda: read_list_pattern(reader), what="patterns")
        )
        if len(patterns) > MAX_LIST_PATTERNS:
            raise ParseError("too many LIST patterns")
    else:
        patterns = (read_list_pattern(reader),)
    return_options: frozenset[str] = frozenset()
    status_items: tuple[str, ...] | None = None
    if reader.skip_byte(SP):
        if reader.read_keyword("RETURN") != "RETURN":
            raise ParseError("expected RETURN")
        reader.expect_space()
        extended = True
        return_options, status_items = _read_return(reader)
    reader.expect_end()
    return List(
        tag,
        reference=reference,
        patterns=patterns,
        selection=selection,
        return_options=return_options,
        status_items=status_items,
        extended=extended,
    )


def parse_lsub(reader: Reader, tag: str) -> Lsub:
    """`LSUB SP reference SP list-mailbox` (RFC 3501 §6.3.9)."""
    reader.expect_space()
    reference = read_reference(reader)
    reader.expect_space()
    pattern = read_list_pattern(reader)
    reader.expect_end()
    return Lsub(tag, reference=reference, pattern=pattern)
