"""State every command handler shares, and the helpers they use to talk and sync."""

from __future__ import annotations

import enum
import logging
from functools import partial
from typing import NoReturn

from gateway.imap.change_hub import MailboxWatch
from gateway.imap.channel import Channel
from gateway.imap.context import ServerContext
from gateway.imap.errors import CommandFailedError, SessionEndedError, bad, from_store_error
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.selected import SelectedMailbox
from gateway.imap.snapshot_cache import CachedMailbox
from gateway.store.errors import NotFoundError, StoreError
from gateway.store.views import MailboxInfo, UserInfo

log = logging.getLogger("gateway.imap")


class State(enum.Enum):
    """RFC 3501 §3 connection states."""

    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class SessionBase:
    def __init__(
        self, context: ServerContext, channel: Channel, *, peer: str, session_id: str
    ) -> None:
        self.context = context
        self.store = context.store
        self.channel = channel
        self.peer = peer
        self.session_id = session_id
        self.state = State.NOT_AUTHENTICATED
        self.user: UserInfo | None = None
        self.selected: SelectedMailbox | None = None
        self.watch: MailboxWatch | None = None
        # The shared snapshot the selected view came from (see snapshot_cache.py).
        self.selected_snapshot: CachedMailbox | None = None
        self.condstore = False
        self.qresync = False
        self.unauthenticated_commands = 0

    # --- output ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.channel.write(data)

    def write_lines(self, lines: list[bytes]) -> None:
        if lines:
            self.channel.write(b"".join(lines))

    def untagged(self, text: str) -> None:
        self.channel.write(responses.untagged(text))

    @property
    def actor(self) -> str:
        """Who the change log records for changes made here (write-back skips its own)."""
        return f"imap:{self.user.name if self.user else '-'}"

    @property
    def user_id(self) -> int:
        if self.user is None:
            raise bad("not logged in")
        return self.user.id

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise bad("no mailbox selected")
        return self.selected

    def require_writable(self) -> SelectedMailbox:
        selected = self.require_selected()
        if selected.read_only:
            raise CommandFailedError("NO", "mailbox is read-only", ResponseCode.READ_ONLY)
        return selected

    def enable_condstore(self) -> None:
        """Turn CONDSTORE on for the rest of the session (RFC 7162 §3.1).

        Once on, every FETCH the server sends carries MODSEQ (§3.1.4); a client that enabled it
        with a mailbox already selected learns the mailbox's HIGHESTMODSEQ at once (§3.1.2.1).
        """
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None:
            highest = self.selected.highestmodseq
            self.untagged(f"OK [{ResponseCode.HIGHESTMODSEQ} {highest}] Highest")

    # --- store helpers ----------------------------------------------------------------------

    async def find_mailbox(
        self, name: str, *, missing_code: ResponseCode = ResponseCode.NONEXISTENT
    ) -> MailboxInfo:
        try:
            return await self.context.call(self.store.get_mailbox, user_id=self.user_id, name=name)
        except StoreError as error:
            raise from_store_error(error, missing_code=missing_code) from error

    # --- selected mailbox --------------------------------------------------------------------

    def enter_mailbox(self, selected: SelectedMailbox) -> None:
        self.leave_mailbox()
        self.selected = selected
        self.watch = self.context.hub.watch(selected.mailbox_id, selected.highestmodseq)
        self.state = State.SELECTED

    def leave_mailbox(self) -> None:
        if self.watch is not None:
            self.context.hub.unwatch(self.watch)
        self.watch = None
        self.selected = None
        self.selected_snapshot = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    def selected_mailbox_deleted(self) -> NoReturn:
        """Another session deleted the selected mailbox: end the session as Dovecot does.

        RFC 3501 has no way to tell a client its mailbox is gone other than BYE; Dovecot
        sends this same text and disconnects, and clients reconnect and resync.
        """
        self.leave_mailbox()
        self.untagged("BYE Selected mailbox was deleted, have to disconnect.")
        raise SessionEndedError

    async def send_updates(self, *, allow_expunge: bool, force: bool = False) -> None:
        """Tell the client what other sessions, the fetcher or SMTP changed (RFC 3501 §7.4.1).

        Expunges wait while `allow_expunge` is False: during FETCH, STORE and SEARCH by
        sequence number the client's numbers must stay valid (RFC 3501 §7.4.1, §5.5).
        """
        selected = self.selected
        if selected is None or self.watch is None:
            return
        if force or self.watch.changed.is_set():
            self.watch.changed.clear()
            try:
                delta = await self.context.call(
                    self.store.mailbox_delta,
                    mailbox_id=selected.mailbox_id,
                    since_modseq=selected.highestmodseq,
                )
            except NotFoundError:
                self.selected_mailbox_deleted()

            if self.selected is not selected:
                return
            tracker = self.context.recent
            claim = partial(tracker.peek if selected.read_only else tracker.claim, selected.key)
            self.write_lines(
                selected.apply_delta(
                    delta,
                    condstore=self.condstore,
                    claim_recent=claim,
                    expunge_now=allow_expunge,
                    qresync=self.qresync,
                )
            )
        if allow_expunge:
            self.write_lines(selected.flush_expunges(qresync=self.qresync))
