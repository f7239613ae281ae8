"""Authenticated-state commands on mailboxes: LIST, STATUS, CREATE, APPEND, … (RFC 3501 §6.3)."""

from __future__ import annotations

from gateway.imap.errors import bad, from_store_error, no
from gateway.imap.mailbox_list import (
    ListedMailbox,
    list_mailboxes,
    lsub_mailboxes,
    render_list,
)
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.session_base import SessionBase
from gateway.store.errors import StoreError
from gateway.store.views import AppendResult, MailboxInfo, MailboxStatus

_SPECIAL_USE_ATTRIBUTES = {
    "\\Sent",
    "\\Drafts",
    "\\Trash",
    "\\Junk",
    "\\Archive",
    "\\All",
    "\\Flagged",
}


class MailboxHandlers(SessionBase):
    async def do_namespace(self, command: c.Namespace) -> str:
        # One personal namespace, no prefix, "/" as hierarchy separator (RFC 2342).
        self.untagged('NAMESPACE (("" "/")) NIL NIL')
        return "Namespace completed"

    async def do_create(self, command: c.Create) -> str:
        name = command.mailbox.rstrip("/")
        if not name:
            raise bad("empty mailbox name")
        special_use = None
        if command.special_use:
            if (
                len(command.special_use) > 1
                or command.special_use[0] not in _SPECIAL_USE_ATTRIBUTES
            ):
                raise no("unsupported special use", "USEATTR")
            special_use = command.special_use[0]
        try:
            created = await self.context.call(
                self.store.create_mailbox,
                user_id=self.user_id,
                name=name,
                special_use=special_use,
                subscribe=False,  # RFC 3501 §6.3.3 does not subscribe; the client may
                limits=self.context.mailbox_limits,
            )
        except StoreError as error:
            raise from_store_error(error) from error
        self.context.recent.note_added((created.id, created.uidvalidity), 1)
        return "Create completed"

    async def do_delete(self, command: c.Delete) -> str:
        try:
            await self.context.call(
                self.store.delete_mailbox, user_id=self.user_id, name=command.mailbox
            )
        except StoreError as error:
            raise from_store_error(error) from error
        if self.selected is not None and self.selected.mailbox.name == command.mailbox:
            self.leave_mailbox()
        return "Delete completed"

    async def do_rename(self, command: c.Rename) -> str:
        try:
            await self.context.call(
                self.store.rename_mailbox,
                user_id=self.user_id,
                old_name=command.mailbox,
                new_name=command.new_mailbox.rstrip("/"),
                limits=self.context.mailbox_limits,
            )
        except StoreError as error:
            raise from_store_error(error) from error
        return "Rename completed"

    async def do_subscribe(self, command: c.Subscribe | c.Unsubscribe) -> str:
        try:
            await self.context.call(
                self.store.set_subscribed,
                user_id=self.user_id,
                name=command.mailbox,
                subscribed=isinstance(command, c.Subscribe),
            )
        except StoreError as error:
            raise from_store_error(error) from error
        return f"{type(command).__name__} completed"

    async def do_list(self, command: c.List) -> str:
        if command.patterns == ("",) and not command.extended:
            # RFC 3501 §6.3.8: an empty pattern asks for the hierarchy delimiter.
            self.untagged('LIST (\\Noselect) "/" ""')
            return "List completed"
        user_id = self.user_id

        def read_and_match() -> list[ListedMailbox]:
            # Matching costs grow with the user's mailboxes: off the event loop, like the read.
            return list_mailboxes(
                self.store.list_mailboxes(user_id=user_id),
                reference=command.reference,
                patterns=command.patterns,
                subscriptions=frozenset(self.store.list_subscriptions(user_id=user_id)),
                selection=command.selection,
                return_options=command.return_options,
            )

        listed = await self.context.call(read_and_match)
        for item in listed:
            self.write(render_list(item))
            if (
                command.status_items is not None
                and item.mailbox is not None
                and not item.mailbox.noselect
            ):
                # RFC 5819: STATUS right after the mailbox's LIST line.
                await self.write_status(item.mailbox, command.status_items)
        return "List completed"

    async def do_lsub(self, command: c.Lsub) -> str:
        if command.pattern == "":
            self.untagged('LSUB (\\Noselect) "/" ""')
            return "Lsub completed"
        user_id = self.user_id

        def read_and_match() -> list[ListedMailbox]:
            return lsub_mailboxes(
                self.store.list_mailboxes(user_id=user_id),
                reference=command.reference,
                pattern=command.pattern,
                subscriptions=frozenset(self.store.list_subscriptions(user_id=user_id)),
            )

        listed = await self.context.call(read_and_match)
        for item in listed:
            self.write(render_list(item, command="LSUB"))
        return "Lsub completed"

    async def do_status(self, command: c.Status) -> str:
        mailbox = await self.find_mailbox(command.mailbox)
        await self.write_status(mailbox, command.items)
        return "Status completed"

    async def write_status(self, mailbox: MailboxInfo, items: tuple[str, ...]) -> None:
        status: MailboxStatus = await self.context.call(
            self.store.mailbox_status, mailbox_id=mailbox.id
        )
        values = {
            "MESSAGES": status.messages,
            "RECENT": 0,
            "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": status.highestmodseq,
            "SIZE": status.size,
        }
        if self.selected is not None and self.selected.mailbox_id == mailbox.id:
            values["RECENT"] = len(self.selected.recent)
        elif "RECENT" in items:
            values["RECENT"] = await self.count_recent(status.mailbox)
        body = " ".join(f"{item} {values[item]}" for item in items)
        name = responses.mailbox_name(mailbox.name).decode("ascii")
        self.untagged(f"STATUS {name} ({body})")

    async def count_recent(self, mailbox: MailboxInfo) -> int:
        """Messages no session has seen yet, without taking \\Recent from them (RFC 3501
        §6.3.10: STATUS leaves the mailbox as it was)."""
        key = (mailbox.id, mailbox.uidvalidity)
        if not self.context.recent.may_have_recent(key, mailbox.uidnext):
            return 0
        cached = await self.context.snapshots.load(self.context, mailbox)
        return len(self.context.recent.peek(key, cached.uids))

    async def do_append(self, command: c.Append) -> str:
        user_id, actor = self.user_id, self.actor

        def look_up_and_append() -> tuple[MailboxInfo, AppendResult]:
            # One trip to the I/O threads, not two: a client uploading many messages pays
            # the hop once each.
            mailbox = self.store.get_mailbox(user_id=user_id, name=command.mailbox)
            result = self.store.append_message(
                mailbox_id=mailbox.id,
                content=command.message,
                flags=command.flags,
                internal_date=command.internal_date,
                actor=actor,
                # The client waits for this OK: its body text is decoded for SEARCH later
                # (gateway/search_indexer.py), as for fetched mail.
                defer_search_text=True,
            )
            return mailbox, result

        try:
            mailbox, result = await self.context.call(look_up_and_append)
        except StoreError as error:
            raise from_store_error(error, missing_code=ResponseCode.TRYCREATE) from error
        self.context.recent.note_added((mailbox.id, mailbox.uidvalidity), result.uid)
        if self.selected is not None and self.selected.mailbox_id == mailbox.id:
            await self.send_updates(allow_expunge=False, force=True)
        return f"[{ResponseCode.APPENDUID} {result.uidvalidity} {result.uid}] Append completed"
