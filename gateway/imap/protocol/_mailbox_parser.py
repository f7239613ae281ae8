"""Commands on whole mailboxes: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS,
APPEND (RFC 3501 §6.3, RFC 7162 §3.1.8/§3.2.5, RFC 6154 §3)."""

from __future__ import annotations

from typing import Final

from gateway.imap.protocol._arguments import read_date_time, read_mailbox
from gateway.imap.protocol._lexer import BACKSLASH, DQUOTE, LPAREN, SP, ParseError, Reader
from gateway.imap.protocol._list_parser import read_status_items
from gateway.imap.protocol.commands import (
    Append,
    Create,
    Delete,
    QResyncParameters,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from gateway.imap.protocol.sequence import SequenceSet

# RFC 6154 §2 special-use attributes, in their canonical spelling.
_SPECIAL_USES: Final = {
    name.upper(): name
    for name in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


def _read_qresync(reader: Reader) -> QResyncParameters:
    """RFC 7162 §3.2.5: `(uidvalidity modseq [known-uids] [(seq-set uid-set)])`."""
    reader.expect_byte(LPAREN, "'(' after QRESYNC")
    uidvalidity = reader.read_nz_number("UIDVALIDITY")
    reader.expect_space()
    modseq = reader.read_modseq(allow_zero=False)
    known_uids: SequenceSet | None = None
    sequence_match: tuple[SequenceSet, SequenceSet] | None = None
    has_match_data = False
    if reader.skip_byte(SP):
        has_match_data = reader.peek() == LPAREN
        if not has_match_data:
            # RFC 7162 §7: "*" is not allowed in known-uids or in the sequence match data.
            known_uids = reader.read_sequence_set(allow_star=False)
            has_match_data = reader.skip_byte(SP)
    if has_match_data:
        reader.expect_byte(LPAREN, "'(' to open QRESYNC match data")
        sequences = reader.read_sequence_set(allow_star=False)
        reader.expect_space()
        uids = reader.read_sequence_set(allow_star=False)
        reader.expect_byte(ord(")"), "')' to close QRESYNC match data")
        sequence_match = (sequences, uids)
    reader.expect_byte(ord(")"), "')' to close QRESYNC parameters")
    return QResyncParameters(uidvalidity, modseq, known_uids, sequence_match)


def parse_select(reader: Reader, tag: str, read_only: bool) -> Select:
    """`SELECT/EXAMINE mailbox [SP "(" select-param *(SP select-param) ")"]`."""
    reader.expect_space()
    mailbox = read_mailbox(reader)
    condstore = False
    qresync: QResyncParameters | None = None
    if reader.skip_byte(SP):

        def read_parameter() -> None:
            nonlocal condstore, qresync
            name = reader.read_keyword("select parameter")
            if name == "CONDSTORE" and not condstore:
                condstore = True
            elif name == "QRESYNC" and qresync is None:
                reader.expect_space()
                qresync = _read_qresync(reader)
            else:
                raise ParseError(f"unknown or repeated select parameter {name}")

        reader.read_parenthesised(read_parameter, what="select parameters")
    reader.expect_end()
    return Select(tag, mailbox=mailbox, read_only=read_only, condstore=condstore, qresync=qresync)


def _read_special_use(reader: Reader) -> str:
    reader.expect_byte(BACKSLASH, "special-use attribute")
    name = "\\" + reader.read_atom("special-use attribute")
    return _SPECIAL_USES.get(name.upper(), name)


def parse_create(reader: Reader, tag: str) -> Create:
    """`CREATE mailbox [SP "(" USE SP "(" use-attr *(SP use-attr) ")" ")"]` (RFC 6154 §3)."""
    reader.expect_space()
    mailbox = read_mailbox(reader)
    special_use: tuple[str, ...] = ()
    if reader.skip_byte(SP):

        def read_parameter() -> None:
            nonlocal special_use
            name = reader.read_keyword("create parameter")
            if name != "USE" or special_use:
                raise ParseError(f"unknown or repeated create parameter {name}")
            reader.expect_space()
            special_use = tuple(
                reader.read_parenthesised(
                    lambda: _read_special_use(reader), allow_empty=True, what="USE list"
                )
            )

        reader.read_parenthesised(read_parameter, what="create parameters")
    reader.expect_end()
    return Create(tag, mailbox=mailbox, special_use=special_use)


def _parse_single_mailbox(reader: Reader) -> str:
    reader.expect_space()
    mailbox = read_mailbox(reader)
    reader.expect_end()
    return mailbox


def parse_delete(reader: Reader, tag: str) -> Delete:
    return Delete(tag, mailbox=_parse_single_mailbox(reader))


def parse_subscribe(reader: Reader, tag: str) -> Subscribe:
    return Subscribe(tag, mailbox=_parse_single_mailbox(reader))


def parse_unsubscribe(reader: Reader, tag: str) -> Unsubscribe:
    return Unsubscribe(tag, mailbox=_parse_single_mailbox(reader))


def parse_rename(reader: Reader, tag: str) -> Rename:
    reader.expect_space()
    mailbox = read_mailbox(reader)
    reader.expect_space()
    new_mailbox = read_mailbox(reader)
    reader.expect_end()
    return Rename(tag, mailbox=mailbox, new_mailbox=new_mailbox)


def parse_status(reader: Reader, tag: str) -> Status:
    reader.expect_space()
    mailbox = read_mailbox(reader)
    reader.expect_space()
    items = read_status_items(reader)
    reader.expect_end()
    return Status(tag, mailbox=mailbox, items=items)


def parse_append(reader: Reader, tag: str) -> Append:
    """`APPEND mailbox [SP flag-list] [SP date-time] SP literal` (RFC 3501 §6.3.11)."""
    reader.expect_space()
    mailbox = read_mailbox(reader)
    reader.expect_space()
    flags: tuple[str, ...] = ()
    internal_date = None
    if reader.peek() == LPAREN:
        flags = reader.read_flag_list()
        reader.expect_space()
    if reader.peek() == DQUOTE:
        internal_date = read_date_time(reader)
        reader.expect_space()
    message = reader.read_literal(limit=reader.message_literal_limit)
    reader.expect_end()
    return Append(tag, mailbox=mailbox, flags=flags, internal_date=internal_date, message=message)
