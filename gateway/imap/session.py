"""One client's IMAP session: the state table and the dispatcher (RFC 3501 §3, §6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.imap.errors import CommandFailedError, SessionEndedError
from gateway.imap.handlers_general import GeneralHandlers
from gateway.imap.handlers_mailboxes import MailboxHandlers
from gateway.imap.handlers_messages import MessageHandlers
from gateway.imap.handlers_select import SelectHandlers
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.session_base import State, log
from gateway.store.errors import StoreError

# Commands before login a client gets before the server hangs up (DESIGN invariant 6).
MAX_UNAUTHENTICATED_COMMANDS = 30

C = TypeVar("C", bound=c.Command)
Handler = Callable[["ImapSession", C], Awaitable[str | None]]

# Where a command is legal (RFC 3501 §6.1 to §6.4); anything else is BAD.
_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_BEFORE_LOGIN = frozenset({State.NOT_AUTHENTICATED})
_LOGGED_IN = frozenset({State.AUTHENTICATED, State.SELECTED})
_SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True)
class Route(Generic[C]):
    """One command: the states it is legal in and the handler that runs it (typed with the
    command, so mypy checks each pairing); one table, so nothing is allowed yet unhandled."""

    command: type[C]
    states: frozenset[State]
    handler: Handler[C]


def route(command: type[C]) -> Callable[[frozenset[State], Handler[C]], Route[C]]:
    """`route(c.Fetch)(states, handler)`: the command alone fixes C, so mypy rejects a
    handler written for another command."""

    def build(states: frozenset[State], handler: Handler[C]) -> Route[C]:
        return Route(command, states, handler)

    return build


class ImapSession(GeneralHandlers, MailboxHandlers, SelectHandlers, MessageHandlers):
    async def handle(self, command: c.Command) -> None:
        """Run one command and write its tagged completion (OK, NO or BAD)."""
        if self.state is State.NOT_AUTHENTICATED:
            self.unauthenticated_commands += 1
            if self.unauthenticated_commands > MAX_UNAUTHENTICATED_COMMANDS:
                self.untagged("BYE Too many commands without logging in")
                self.state = State.LOGOUT
                return
        route = COMMANDS.get(type(command))
        if route is None or self.state not in route.states:
            self.write(
                responses.tagged(
                    command.tag, "BAD", f"{_name(command)} not allowed in {self.state.value} state"
                )
            )
            return
        was_authenticated = self.user is not None
        try:
            text = await route.handler(self, command)
        except SessionEndedError:
            self.state = State.LOGOUT
            return
        except CommandFailedError as failure:
            self.write(responses.tagged(command.tag, failure.status, failure.text, failure.code))
            return
        except StoreError as error:
            log.warning("event=imap_store_error session=%s error=%r", self.session_id, error)
            self.write(responses.tagged(command.tag, "NO", str(error), ResponseCode.SERVERBUG))
            return
        if text is None:
            return
        if not was_authenticated and self.user is not None:
            # RFC 3501 §7.2.1 / RFC 5530: tell the client its new capabilities at once.
            text = f"[{self.capability_code()}] {text}"
        self.write(responses.tagged(command.tag, "OK", text))

    def close(self) -> None:
        """Release what the session holds (watch, per-user slot)."""
        self.leave_mailbox()
        if self.user is not None:
            self.context.limits.close_session(self.user.id)
            self.user = None


def _name(command: c.Command) -> str:
    return type(command).__name__.upper()


_ROUTES: tuple[Route[Any], ...] = (
    route(c.Capability)(_ANY, ImapSession.do_capability),
    route(c.Noop)(_ANY, ImapSession.do_noop),
    route(c.Logout)(_ANY, ImapSession.do_logout),
    route(c.Id)(_ANY, ImapSession.do_id),
    route(c.StartTls)(_BEFORE_LOGIN, ImapSession.do_starttls),
    route(c.Authenticate)(_BEFORE_LOGIN, ImapSession.do_authenticate),
    route(c.Login)(_BEFORE_LOGIN, ImapSession.do_login),
    route(c.Select)(_LOGGED_IN, ImapSession.do_select),
    route(c.Create)(_LOGGED_IN, ImapSession.do_create),
    route(c.Delete)(_LOGGED_IN, ImapSession.do_delete),
    route(c.Rename)(_LOGGED_IN, ImapSession.do_rename),
    route(c.Subscribe)(_LOGGED_IN, ImapSession.do_subscribe),
    route(c.Unsubscribe)(_LOGGED_IN, ImapSession.do_subscribe),
    route(c.List)(_LOGGED_IN, ImapSession.do_list),
    route(c.Lsub)(_LOGGED_IN, ImapSession.do_lsub),
    route(c.Namespace)(_LOGGED_IN, ImapSession.do_namespace),
    route(c.Status)(_LOGGED_IN, ImapSession.do_status),
    route(c.Append)(_LOGGED_IN, ImapSession.do_append),
    route(c.Enable)(_LOGGED_IN, ImapSession.do_enable),
    route(c.Idle)(_LOGGED_IN, ImapSession.do_idle),
    route(c.Compress)(_LOGGED_IN, ImapSession.do_compress),
    route(c.Check)(_SELECTED, ImapSession.do_noop),
    route(c.Close)(_SELECTED, ImapSession.do_close),
    route(c.Unselect)(_SELECTED, ImapSession.do_unselect),
    route(c.Expunge)(_SELECTED, ImapSession.do_expunge),
    route(c.Search)(_SELECTED, ImapSession.do_search),
    route(c.Fetch)(_SELECTED, ImapSession.do_fetch),
    route(c.Store)(_SELECTED, ImapSession.do_store),
    route(c.Copy)(_SELECTED, ImapSession.do_copy),
    route(c.Move)(_SELECTED, ImapSession.do_copy),
)
# The command table: every command the parser produces, with its states and its handler.
COMMANDS: dict[type[c.Command], Route[Any]] = {route.command: route for route in _ROUTES}
