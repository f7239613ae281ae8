"""One client's IMAP session: the state table and the dispatcher (RFC 3501 §3, §6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.imap.errors import CommandFailedError, SessionEndedError
from gateway.imap.handlers_general import GeneralHandlers
from gateway.imap.handlers_mailboxes import MailboxHandlers
from gateway.imap.handlers_messages import MessageHandlers
from gateway.imap.handlers_select import SelectHandlers
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.session_base import State, log
from gateway.store.errors import StoreError

_ANY_STATE: frozenset[type[c.Command]] = frozenset({c.Capability, c.Noop, c.Logout, c.Id})
_NOT_AUTHENTICATED = _ANY_STATE | {c.StartTls, c.Authenticate, c.Login}
_AUTHENTICATED = _ANY_STATE | {
    c.Select,
    c.Create,
    c.Delete,
    c.Rename,
    c.Subscribe,
    c.Unsubscribe,
    c.List,
    c.Lsub,
    c.Namespace,
    c.Status,
    c.Append,
    c.Enable,
    c.Idle,
    c.Compress,
}
_SELECTED = _AUTHENTICATED | {
    c.Check,
    c.Close,
    c.Unselect,
    c.Expunge,
    c.Search,
    c.Fetch,
    c.Store,
    c.Copy,
    c.Move,
}
# Which commands each state accepts (RFC 3501 §6.1 to §6.4); anything else is BAD.
ALLOWED_COMMANDS: dict[State, frozenset[type[c.Command]]] = {
    State.NOT_AUTHENTICATED: _NOT_AUTHENTICATED,
    State.AUTHENTICATED: _AUTHENTICATED,
    State.SELECTED: _SELECTED,
    State.LOGOUT: frozenset(),
}
# Commands before login a client gets before the server hangs up (DESIGN invariant 6).
MAX_UNAUTHENTICATED_COMMANDS = 30

Handler = Callable[[Any], Awaitable[str | None]]


class ImapSession(GeneralHandlers, MailboxHandlers, SelectHandlers, MessageHandlers):
    def _handler(self, command: c.Command) -> Handler:
        handlers: dict[type[c.Command], Handler] = {
            c.Capability: self.do_capability,
            c.Noop: self.do_noop,
            c.Check: self.do_noop,
            c.Logout: self.do_logout,
            c.Id: self.do_id,
            c.StartTls: self.do_starttls,
            c.Login: self.do_login,
            c.Authenticate: self.do_authenticate,
            c.Enable: self.do_enable,
            c.Compress: self.do_compress,
            c.Idle: self.do_idle,
            c.Namespace: self.do_namespace,
            c.Create: self.do_create,
            c.Delete: self.do_delete,
            c.Rename: self.do_rename,
            c.Subscribe: self.do_subscribe,
            c.Unsubscribe: self.do_subscribe,
            c.List: self.do_list,
            c.Lsub: self.do_lsub,
            c.Status: self.do_status,
            c.Append: self.do_append,
            c.Select: self.do_select,
            c.Close: self.do_close,
            c.Unselect: self.do_unselect,
            c.Fetch: self.do_fetch,
            c.Store: self.do_store,
            c.Search: self.do_search,
            c.Copy: self.do_copy,
            c.Move: self.do_copy,
            c.Expunge: self.do_expunge,
        }
        return handlers[type(command)]

    async def handle(self, command: c.Command) -> None:
        """Run one command and write its tagged completion (OK, NO or BAD)."""
        if self.state is State.NOT_AUTHENTICATED:
            self.unauthenticated_commands += 1
            if self.unauthenticated_commands > MAX_UNAUTHENTICATED_COMMANDS:
                self.untagged("BYE Too many commands without logging in")
                self.state = State.LOGOUT
                return
        if type(command) not in ALLOWED_COMMANDS[self.state]:
            self.write(
                responses.tagged(
                    command.tag, "BAD", f"{_name(command)} not allowed in {self.state.value} state"
                )
            )
            return
        was_authenticated = self.user is not None
        try:
            text = await self._handler(command)(command)
        except SessionEndedError:
            self.state = State.LOGOUT
            return
        except CommandFailedError as failure:
            self.write(responses.tagged(command.tag, failure.status, failure.text, failure.code))
            return
        except StoreError as error:
            log.warning("event=imap_store_error session=%s error=%r", self.session_id, error)
            self.write(responses.tagged(command.tag, "NO", str(error), "SERVERBUG"))
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
