"""The IMAP command table: one entry per command, its states and its handler together."""

from __future__ import annotations

from gateway.imap.protocol import commands as c
from gateway.imap.session import COMMANDS
from gateway.imap.session_base import State


def _concrete_commands() -> set[type[c.Command]]:
    found: set[type[c.Command]] = set()
    pending = list(c.Command.__subclasses__())
    while pending:
        command = pending.pop()
        pending.extend(command.__subclasses__())
        if not command.__subclasses__():
            found.add(command)
    return found


def test_every_command_the_parser_makes_has_states_and_a_handler() -> None:
    assert _concrete_commands() <= set(COMMANDS)
    for command, route in COMMANDS.items():
        assert route.command is command and route.states and callable(route.handler)


def test_states_follow_rfc_3501() -> None:
    assert COMMANDS[c.Login].states == {State.NOT_AUTHENTICATED}
    assert COMMANDS[c.Fetch].states == {State.SELECTED}
    assert COMMANDS[c.Select].states == {State.AUTHENTICATED, State.SELECTED}
    assert all(State.LOGOUT not in route.states for route in COMMANDS.values())
