"""Property tests: the command parser survives anything and stays within its limits."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.imap.protocol import NEED_DATA, CommandError, CommandParser, LiteralContinuation
from gateway.imap.protocol.commands import Command, Noop
from tests.imap.test_parser import CLIENT_LINES
from tests.imap.test_parser_fetch import CLIENT_FETCHES, CLIENT_STORES
from tests.imap.test_parser_search import CLIENT_SEARCHES

MAX_LINE = 64
MAX_LITERAL = 128
# Unread input (a partial line) plus the command being framed, lines and literals together.
MAX_BUFFERED = MAX_LITERAL + 2 * MAX_LINE + 2

VALID_LINES = [line for line, _ in CLIENT_LINES + CLIENT_FETCHES + CLIENT_SEARCHES + CLIENT_STORES]

# Pieces of IMAP syntax, so that random input often gets deep into the grammar.
TOKENS = [
    b"A1 ", b"* ", b"+ ", b"UID ", b"FETCH ", b"SEARCH ", b"STORE ", b"LOGIN ", b"APPEND ",
    b"SELECT ", b"LIST ", b"STATUS ", b"AUTHENTICATE ", b"ID ", b"NOT ", b"OR ", b"BODY[",
    b"BODY.PEEK[", b"HEADER.FIELDS ", b"]", b"<0.5>", b"1:*", b"*", b"0", b"4294967296", b"7",
    b",", b":", b"(", b")", b'"', b"\\", b"{", b"}", b"{3}", b"{2+}", b"{999999}", b"{0}",
    b"\r\n", b"\n", b"\r", b" ", b"\x00", b"\xff", b"&", b"-", b"INBOX", b"&AGE-", b"+FLAGS",
    b"(CHANGEDSINCE 0 VANISHED)", b"(QRESYNC (1 2 1:5 (1 2)))", b"CHARSET UTF-8 ", b"NIL",
    b'"17-Jul-1996 02:44:25 -0700"', b"1-Feb-1994", b"\\Seen",
]  # fmt: skip

EVENT_TYPES = (Command, LiteralContinuation, CommandError)


def run(
    parser: CommandParser, data: bytes, chunk_sizes: list[int], max_buffered: int = MAX_BUFFERED
) -> list[object]:
    """Feed `data` in chunks (cycling through `chunk_sizes`), checking the invariants."""
    events: list[object] = []
    position = 0
    index = 0
    while position < len(data):
        size = chunk_sizes[index % len(chunk_sizes)] if chunk_sizes else len(data)
        index += 1
        parser.receive_data(data[position : position + size])
        position += size
        while (event := parser.next_event()) is not NEED_DATA:
            assert isinstance(event, EVENT_TYPES), event
            events.append(event)
        assert parser.buffered_size <= max_buffered
    return events


def new_parser() -> CommandParser:
    return CommandParser(max_line_length=MAX_LINE, max_literal_size=MAX_LITERAL)


FUZZ = settings(
    max_examples=int(os.environ.get("PARSER_FUZZ_EXAMPLES", "800")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
chunkings = st.lists(st.integers(min_value=1, max_value=40), max_size=8)
token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


@FUZZ
@given(st.binary(max_size=400), chunkings)
def test_random_bytes(data: bytes, chunk_sizes: list[int]) -> None:
    events = run(new_parser(), data, chunk_sizes)
    assert run(new_parser(), data, []) == events  # chunking never changes the result


@FUZZ
@given(token_soup, chunkings)
def test_random_syntax(data: bytes, chunk_sizes: list[int]) -> None:
    events = run(new_parser(), data, chunk_sizes)
    assert run(new_parser(), data, [1]) == events


@st.composite
def mutated_commands(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_LINES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "token"]))
        if action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=3))
        elif action == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=5))]
        elif action == "replace" and position < len(data):
            data[position] = draw(st.integers(min_value=0, max_value=255))
        else:
            data[position:position] = draw(st.sampled_from(TOKENS))
    return bytes(data)


@FUZZ
@given(mutated_commands(), chunkings)
def test_mutated_client_commands(data: bytes, chunk_sizes: list[int]) -> None:
    parser = CommandParser(max_line_length=1024, max_literal_size=4096)  # valid lines fit
    events = run(parser, data + b"\r\nZZ NOOP\r\n", chunk_sizes, 4096 + 2 * 1024 + 2)
    if b"{" not in data:
        # Without literals the damage cannot reach past the line: the next command parses.
        assert events[-1] == Noop("ZZ")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(VALID_LINES), chunkings)
def test_valid_commands_in_any_chunking(line: bytes, chunk_sizes: list[int]) -> None:
    data = line + b"\r\n"
    bound = len(data)  # default limits: nothing valid is ever refused or cut
    whole = [
        e for e in run(CommandParser(), data, [], bound) if not isinstance(e, LiteralContinuation)
    ]
    chunked = run(CommandParser(), data, chunk_sizes, bound)
    assert [e for e in chunked if not isinstance(e, LiteralContinuation)] == whole
    assert len(whole) == 1
