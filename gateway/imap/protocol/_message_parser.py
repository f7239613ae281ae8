"""Commands on messages of the selected mailbox: STORE, COPY, MOVE, UID EXPUNGE
(RFC 3501 §6.4, RFC 7162 §3.1.3 UNCHANGEDSINCE, RFC 6851 MOVE, RFC 4315 §2.1)."""

from __future__ import annotations

from typing import Final

from gateway.imap.protocol._arguments import read_mailbox
from gateway.imap.protocol._lexer import LPAREN, SP, ParseError, Reader
from gateway.imap.protocol.commands import Copy, Expunge, Move, Store, StoreMode
from gateway.imap.protocol.sequence import SequenceSet

_STORE_ITEM_CHARS: Final = frozenset(b"+-.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_STORE_MODES: Final[dict[str, StoreMode]] = {"": "replace", "+": "add", "-": "remove"}


def _read_unchanged_since(reader: Reader) -> int:
    """RFC 7162 §3.1.3 store modifiers: `(UNCHANGEDSINCE mod-sequence-valzer)`."""
    unchanged_since: int | None = None

    def read_modifier() -> None:
        nonlocal unchanged_since
        name = reader.read_keyword("store modifier")
        if name != "UNCHANGEDSINCE" or unchanged_since is not None:
            raise ParseError(f"unknown or repeated store modifier {name}")
        reader.expect_space()
        unchanged_since = reader.read_modseq(allow_zero=True)

    reader.read_parenthesised(read_modifier, what="store modifiers")
    assert unchanged_since is not None  # noqa: S101 - the list is non-empty
    return unchanged_since


def parse_store(reader: Reader, tag: str, uid: bool) -> Store:
    """`[UID] STORE set [SP (UNCHANGEDSINCE n)] SP [+-]FLAGS[.SILENT] SP flags`."""
    reader.expect_space()
    sequence_set = reader.read_sequence_set()
    reader.expect_space()
    unchanged_since: int | None = None
    if reader.peek() == LPAREN:
        unchanged_since = _read_unchanged_since(reader)
        reader.expect_space()
    item = reader.read_run(_STORE_ITEM_CHARS).decode("ascii").upper()
    sign = item[:1] if item[:1] in ("+", "-") else ""
    silent = item.endswith(".SILENT")
    if item[len(sign) :].removesuffix(".SILENT") != "FLAGS":
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    reader.expect_space()
    if reader.peek() == LPAREN:
        flags = reader.read_flag_list()
    else:
        # RFC 3501 §9 store-att-flags: the parentheses may be left out.
        flag_names = [reader.read_flag()]
        while reader.skip_byte(SP):
            flag_names.append(reader.read_flag())
        flags = tuple(flag_names)
    reader.expect_end()
    return Store(
        tag,
        uid=uid,
        sequence_set=sequence_set,
        mode=_STORE_MODES[sign],
        silent=silent,
        flags=flags,
        unchanged_since=unchanged_since,
    )


def _parse_set_and_mailbox(reader: Reader) -> tuple[SequenceSet, str]:
    reader.expect_space()
    sequence_set = reader.read_sequence_set()
    reader.expect_space()
    mailbox = read_mailbox(reader)
    reader.expect_end()
    return sequence_set, mailbox


def parse_copy(reader: Reader, tag: str, uid: bool) -> Copy:
    sequence_set, mailbox = _parse_set_and_mailbox(reader)
    return Copy(tag, uid=uid, sequence_set=sequence_set, mailbox=mailbox)


def parse_move(reader: Reader, tag: str, uid: bool) -> Move:
    sequence_set, mailbox = _parse_set_and_mailbox(reader)
    return Move(tag, uid=uid, sequence_set=sequence_set, mailbox=mailbox)


def parse_expunge(reader: Reader, tag: str, uid: bool) -> Expunge:
    """EXPUNGE, or UID EXPUNGE set (RFC 4315 §2.1)."""
    if not uid:
        reader.expect_end()
        return Expunge(tag)
    reader.expect_space()
    uid_set = reader.read_sequence_set()
    reader.expect_end()
    return Expunge(tag, uid_set=uid_set)
