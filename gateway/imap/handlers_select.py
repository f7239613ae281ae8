"""SELECT/EXAMINE with CONDSTORE and QRESYNC, CLOSE, UNSELECT (RFC 3501 §6.3.1, RFC 7162)."""

from __future__ import annotations

import contextlib

from gateway.imap.errors import bad
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.selected import SelectedMailbox
from gateway.imap.session_base import SessionBase
from gateway.store.errors import NotFoundError


class SelectHandlers(SessionBase):
    async def do_select(self, command: c.Select) -> str:
        if command.qresync is not None and not self.qresync:
            raise bad("QRESYNC is not enabled")
        if self.selected is not None:
            self.leave_mailbox()
            if self.qresync:
                # RFC 7162 §3.2.11: mark where the old mailbox's responses end.
                self.untagged(f"OK [{ResponseCode.CLOSED}] Previous mailbox closed")
        mailbox = await self.find_mailbox(command.mailbox)
        cached = await self.context.snapshots.load(self.context, mailbox)
        tracker = self.context.recent
        see_recent = tracker.peek if command.read_only else tracker.claim
        recent = see_recent((mailbox.id, mailbox.uidvalidity), cached.uids)
        selected = SelectedMailbox(
            cached.snapshot,
            read_only=command.read_only,
            recent=recent,
            uids=cached.uids,
            keywords=cached.keywords,
            first_unseen=cached.first_unseen,
        )
        self.enter_mailbox(selected)
        self.selected_snapshot = cached
        if command.condstore or command.qresync is not None:
            self.condstore = True
        lines = selected.flags_lines()
        lines.append(responses.untagged(f"{len(selected)} EXISTS"))
        lines.append(responses.untagged(f"{len(selected.recent)} RECENT"))
        first_unseen = selected.first_unseen()
        if first_unseen is not None:
            lines.append(
                responses.untagged(f"OK [{ResponseCode.UNSEEN} {first_unseen}] First unseen")
            )
        lines.append(
            responses.untagged(f"OK [{ResponseCode.UIDVALIDITY} {selected.uidvalidity}] UIDs valid")
        )
        lines.append(
            responses.untagged(f"OK [{ResponseCode.UIDNEXT} {selected.uidnext}] Predicted next UID")
        )
        lines.append(
            responses.untagged(
                f"OK [{ResponseCode.HIGHESTMODSEQ} {selected.highestmodseq}] Highest"
            )
        )
        self.write_lines(lines)
        if command.qresync is not None:
            await self.send_qresync_changes(selected, command.qresync)
        access = ResponseCode.READ_ONLY if command.read_only else ResponseCode.READ_WRITE
        return f"[{access}] {'Examine' if command.read_only else 'Select'} completed"

    async def send_qresync_changes(
        self, selected: SelectedMailbox, params: c.QResyncParameters
    ) -> None:
        """RFC 7162 §3.2.5.1: VANISHED (EARLIER) then FETCH of what changed since `modseq`."""
        if params.uidvalidity != selected.uidvalidity:
            return
        expunged = await self.context.call(
            self.store.expunged_since, mailbox_id=selected.mailbox_id, modseq=params.modseq
        )
        if params.known_uids is not None and expunged:
            known = params.known_uids
            largest = max(expunged[-1], selected.uids[-1] if selected.uids else 0)
            expunged = [uid for uid in expunged if known.contains(uid, largest)]
        if expunged:
            self.untagged(f"VANISHED (EARLIER) {responses.sequence_set_text(expunged)}")
        self.write_lines(
            [
                selected.flags_response(index, entry, condstore=True, uid=True)
                for index, entry in enumerate(selected.entries)
                if entry.modseq > params.modseq
            ]
        )

    async def do_close(self, command: c.Close) -> str:
        selected = self.require_selected()
        if not selected.read_only:
            # RFC 3501 §6.4.2: expunge silently, no untagged EXPUNGE. A mailbox deleted by
            # another session meanwhile has nothing left to expunge.
            with contextlib.suppress(NotFoundError):
                await self.context.call(
                    self.store.expunge, mailbox_id=selected.mailbox_id, uids=None, actor=self.actor
                )
        self.leave_mailbox()
        return "Close completed"

    async def do_unselect(self, command: c.Unselect) -> str:
        self.require_selected()
        self.leave_mailbox()
        return "Unselect completed"
