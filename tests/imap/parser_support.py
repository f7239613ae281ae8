"""Helpers for the command parser tests: feed bytes, collect events."""

from __future__ import annotations

from gateway.imap.protocol import NEED_DATA, CommandParser, LiteralContinuation
from gateway.imap.protocol.commands import Command
from gateway.imap.protocol.events import CommandError

Event = Command | LiteralContinuation | CommandError


def drain(parser: CommandParser) -> list[Event]:
    events: list[Event] = []
    while (event := parser.next_event()) is not NEED_DATA:
        assert not isinstance(event, type(NEED_DATA))
        events.append(event)
    return events


def feed(data: bytes, *, chunk: int | None = None, **limits: int) -> list[Event]:
    """All events for `data`, given whole or in chunks of `chunk` bytes."""
    parser = CommandParser(**limits)
    events: list[Event] = []
    step = chunk or max(len(data), 1)
    for start in range(0, len(data), step):
        parser.receive_data(data[start : start + step])
        events.extend(drain(parser))
    return events


def commands(data: bytes, **limits: int) -> list[Event]:
    """The events without literal continuations, checked to be the same byte by byte."""
    whole = [event for event in feed(data, **limits) if not isinstance(event, LiteralContinuation)]
    by_byte = feed(data, chunk=1, **limits)
    assert [e for e in by_byte if not isinstance(e, LiteralContinuation)] == whole
    return whole


def parse(line: bytes) -> Event:
    """The single event for one command (CRLF added when missing)."""
    if not line.endswith(b"\n"):
        line += b"\r\n"
    events = commands(line)
    assert len(events) == 1, events
    return events[0]
