"""The command name table: which parser handles which command (RFC 3501 §6), plus the
commands with no or trivial arguments."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import partial
from typing import Final

from gateway.imap.protocol._arguments import read_text
from gateway.imap.protocol._fetch_parser import parse_fetch
from gateway.imap.protocol._lexer import LPAREN, SP, TAG_CHARS, ParseError, Reader, decode_text
from gateway.imap.protocol._list_parser import parse_list, parse_lsub
from gateway.imap.protocol._mailbox_parser import (
    parse_append,
    parse_create,
    parse_delete,
    parse_rename,
    parse_select,
    parse_status,
    parse_subscribe,
    parse_unsubscribe,
)
from gateway.imap.protocol._message_parser import (
    parse_copy,
    parse_expunge,
    parse_move,
    parse_store,
)
from gateway.imap.protocol._search_parser import parse_search
from gateway.imap.protocol.commands import (
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Compress,
    Enable,
    Id,
    Idle,
    Login,
    Logout,
    Namespace,
    Noop,
    StartTls,
    Unselect,
)

CommandParserFunction = Callable[[Reader, str], Command]

_BASE64_CHARS: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)


def _no_arguments(command: Callable[[str], Command]) -> CommandParserFunction:
    def parse(reader: Reader, tag: str) -> Command:
        reader.expect_end()
        return command(tag)

    return parse


def _parse_id(reader: Reader, tag: str) -> Id:
    """RFC 2971 §4: `ID ("name" "value" ...)` or `ID NIL`."""
    reader.expect_space()
    if reader.peek() != LPAREN:
        if reader.read_keyword("ID parameters") != "NIL":
            raise ParseError("expected ID parameter list or NIL")
        reader.expect_end()
        return Id(tag, parameters=None)

    def read_pair() -> tuple[str, str | None]:
        field = decode_text(reader.read_string())
        reader.expect_space()
        value = reader.read_nstring()
        return field, None if value is None else decode_text(value)

    # An empty list is not in the grammar but harmless; Dovecot accepts it too.
    parameters = reader.read_parenthesised(read_pair, allow_empty=True, what="ID parameters")
    reader.expect_end()
    return Id(tag, parameters=tuple(parameters))


def _parse_authenticate(reader: Reader, tag: str) -> Authenticate:
    """`AUTHENTICATE mechanism [SP initial-response]` (RFC 3501 §6.2.2, RFC 4959 SASL-IR)."""
    reader.expect_space()
    mechanism = reader.read_keyword("SASL mechanism")
    initial_response: bytes | None = None
    if reader.skip_byte(SP):
        encoded = reader.read_run(_BASE64_CHARS)
        if not encoded:
            raise ParseError("expected initial response")
        if encoded == b"=":
            initial_response = b""  # RFC 4959 §3: "=" is an empty initial response
        else:
            try:
                initial_response = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ParseError("initial response is not valid base64") from None
    reader.expect_end()
    return Authenticate(tag, mechanism=mechanism, initial_response=initial_response)


def _parse_login(reader: Reader, tag: str) -> Login:
    reader.expect_space()
    username = read_text(reader, "user name")
    reader.expect_space()
    password = read_text(reader, "password")
    reader.expect_end()
    return Login(tag, username=username, password=password)


def _parse_enable(reader: Reader, tag: str) -> Enable:
    """RFC 5161 §3.1: `ENABLE 1*(SP capability)`."""
    capabilities: list[str] = []
    while reader.skip_byte(SP):
        capabilities.append(reader.read_keyword("capability"))
    if not capabilities:
        raise ParseError("ENABLE needs a capability")
    reader.expect_end()
    return Enable(tag, capabilities=tuple(capabilities))


def _parse_compress(reader: Reader, tag: str) -> Compress:
    """RFC 4978 §3: `COMPRESS SP algorithm`."""
    reader.expect_space()
    mechanism = reader.read_keyword("compression mechanism")
    reader.expect_end()
    return Compress(tag, mechanism=mechanism)


COMMANDS: Final[dict[str, CommandParserFunction]] = {
    "CAPABILITY": _no_arguments(Capability),
    "NOOP": _no_arguments(Noop),
    "LOGOUT": _no_arguments(Logout),
    "ID": _parse_id,
    "STARTTLS": _no_arguments(StartTls),
    "AUTHENTICATE": _parse_authenticate,
    "LOGIN": _parse_login,
    "SELECT": partial(parse_select, read_only=False),
    "EXAMINE": partial(parse_select, read_only=True),
    "CREATE": parse_create,
    "DELETE": parse_delete,
    "RENAME": parse_rename,
    "SUBSCRIBE": parse_subscribe,
    "UNSUBSCRIBE": parse_unsubscribe,
    "LIST": parse_list,
    "LSUB": parse_lsub,
    "NAMESPACE": _no_arguments(Namespace),
    "STATUS": parse_status,
    "APPEND": parse_append,
    "ENABLE": _parse_enable,
    "IDLE": _no_arguments(Idle),
    "COMPRESS": _parse_compress,
    "CHECK": _no_arguments(Check),
    "CLOSE": _no_arguments(Close),
    "UNSELECT": _no_arguments(Unselect),
    "EXPUNGE": partial(parse_expunge, uid=False),
    "SEARCH": partial(parse_search, uid=False),
    "FETCH": partial(parse_fetch, uid=False),
    "STORE": partial(parse_store, uid=False),
    "COPY": partial(parse_copy, uid=False),
    "MOVE": partial(parse_move, uid=False),
}

# RFC 3501 §6.4.8 (and RFC 4315, RFC 6851): the commands UID may prefix.
UID_COMMANDS: Final[dict[str, CommandParserFunction]] = {
    "EXPUNGE": partial(parse_expunge, uid=True),
    "SEARCH": partial(parse_search, uid=True),
    "FETCH": partial(parse_fetch, uid=True),
    "STORE": partial(parse_store, uid=True),
    "COPY": partial(parse_copy, uid=True),
    "MOVE": partial(parse_move, uid=True),
}


def read_tag(reader: Reader) -> str:
    """RFC 3501 §9 tag: 1*<any ASTRING-CHAR except "+">, followed by SP."""
    tag = reader.read_run(TAG_CHARS)
    if not tag or not (reader.peek() == SP or reader.at_end()):
        raise ParseError("missing or invalid tag")
    return tag.decode("ascii")


def parse_command(reader: Reader, tag: str) -> Command:
    """The command after its tag; raises ParseError (or Incomplete at a pending literal)."""
    reader.expect_space()
    name = reader.read_keyword("command name")
    table = COMMANDS
    if name == "UID":
        reader.expect_space()
        name = reader.read_keyword("command name")
        table = UID_COMMANDS
    parse = table.get(name)
    if parse is None:
        raise ParseError("unknown command")
    return parse(reader, tag)
