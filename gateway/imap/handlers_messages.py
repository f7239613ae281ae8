"""Selected-state commands on messages: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

from gateway.imap.errors import CommandFailedError, bad, from_store_error, no
from gateway.imap.fetch_render import render_fetch
from gateway.imap.loop_fetch import render_on_loop
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.protocol.fetch_items import FetchAttribute
from gateway.imap.protocol.sequence import SequenceSet
from gateway.imap.search import search_messages, uses_modseq
from gateway.imap.search_limits import SearchTooCostlyError, count_search_keys
from gateway.imap.selected import InvalidSequenceError, SelectedMailbox
from gateway.imap.session_base import SessionBase
from gateway.store.errors import StoreError
from gateway.store.flags import SEEN
from gateway.store.views import EntryInfo

_UID = FetchAttribute("UID")
_FLAGS = FetchAttribute("FLAGS")
_MODSEQ = FetchAttribute("MODSEQ")
_SEARCH_CHARSETS = {"UTF-8", "US-ASCII"}
_ENTRY_ONLY_ITEMS = frozenset({"UID", "FLAGS", "MODSEQ"})
_RENDERED_PER_SNAPSHOT = 4
# Entry-only FETCHes up to this many messages are rendered on the event loop (no I/O).
_INLINE_RENDER_LIMIT = 256
_EXPUNGE_ISSUED = CommandFailedError(
    "NO", "Some of the requested messages no longer exist", ResponseCode.EXPUNGEISSUED
)


class MessageHandlers(SessionBase):
    def resolve(self, selected: SelectedMailbox, sequence_set: SequenceSet, uid: bool) -> list[int]:
        if uid:
            return selected.resolve_uids(sequence_set)
        try:
            return selected.resolve_sequence(sequence_set)
        except InvalidSequenceError as error:
            raise bad(str(error)) from error

    # --- FETCH ---------------------------------------------------------------------------------

    async def do_fetch(self, command: c.Fetch) -> str:
        selected = self.require_selected()
        if command.vanished and not (command.uid and self.qresync):
            raise bad("VANISHED needs UID FETCH with QRESYNC enabled")
        if command.changed_since is not None or _MODSEQ in command.attributes:
            self.enable_condstore()
        await self.send_updates(allow_expunge=command.uid)
        indexes = self.resolve(selected, command.sequence_set, command.uid)
        attributes = list(command.attributes)
        if command.uid and _UID not in attributes:
            attributes.insert(0, _UID)
        if command.changed_since is not None:
            since = command.changed_since
            indexes = [i for i in indexes if selected.entries[i].modseq > since]
            if _MODSEQ not in attributes:
                attributes.append(_MODSEQ)
            if command.vanished:
                await self.send_vanished_earlier(selected, command.sequence_set, since)
        pending = selected.pending_expunges
        ghosts = [i for i in indexes if selected.entries[i].uid in pending] if pending else []
        if ghosts:
            # RFC 2180 §4.1.2: another session expunged these; answer for the rest, then NO.
            gone = set(ghosts)
            indexes = [i for i in indexes if i not in gone]
        if not selected.read_only and any(attribute.sets_seen for attribute in attributes):
            unseen = [
                selected.entries[i].uid for i in indexes if not selected.entries[i].flags & SEEN
            ]
            if unseen:
                update = await self.context.call(
                    self.store.set_flags,
                    mailbox_id=selected.mailbox_id,
                    uids=unseen,
                    flags=["\\Seen"],
                    mode="add",
                    actor=self.actor,
                )
                selected.replace_entries(update.entries)
                if _FLAGS not in attributes:
                    attributes.append(_FLAGS)
        names = tuple(attribute.name for attribute in attributes)
        shared = self.selected_snapshot
        if (
            shared is not None
            and selected.is_pristine
            and len(indexes) == len(selected.entries)
            and set(names) <= _ENTRY_ONLY_ITEMS
        ):
            # Many devices re-read all flags of the same unchanged mailbox: render it once.
            rendered = shared.rendered.get(names)
            if rendered is None:
                whole = render_fetch(
                    self.store, targets=list(enumerate(selected.entries, 1)), attributes=attributes
                )
                rendered = await self.context.call(b"".join, whole)
                if len(shared.rendered) < _RENDERED_PER_SNAPSHOT:
                    shared.rendered[names] = rendered
            self.write(rendered)
            await self.send_updates(allow_expunge=command.uid)
            return "Fetch completed"
        entries = selected.entries
        if len(indexes) == len(entries):  # the whole mailbox
            targets = list(enumerate(entries, 1))
        else:
            targets = [(i + 1, entries[i]) for i in indexes]
        answered = self._render_without_io(selected, targets, attributes, names)
        if answered is not None:
            self.write(answered)
            await self.send_updates(allow_expunge=command.uid)
            if ghosts:
                raise _EXPUNGE_ISSUED
            return "Fetch completed"
        chunks: Iterator[bytes] = render_fetch(
            self.store,
            targets=targets,
            attributes=attributes,
            recent_uids=selected.recent,
            uid_ranges=partial(
                self.store.fetch_message_rows_by_uid, mailbox_id=selected.mailbox_id
            ),
        )
        done = False
        while not done:
            # One thread hop per ~1 MB of responses, not one per chunk plus one to learn the end.
            chunk, done = await self.context.call(_take_chunks, chunks)
            if chunk:
                self.write(chunk)
                await self.channel.drain()
        await self.send_updates(allow_expunge=command.uid)
        if ghosts:
            raise _EXPUNGE_ISSUED
        return "Fetch completed"

    def _render_without_io(
        self,
        selected: SelectedMailbox,
        targets: list[tuple[int, EntryInfo]],
        attributes: list[FetchAttribute],
        names: tuple[str, ...],
    ) -> bytes | None:
        """The response, rendered on the loop, when it needs no database and no disk: a few
        messages' UID/FLAGS/MODSEQ, or a few whole messages already in memory; else None."""
        if set(names) <= _ENTRY_ONLY_ITEMS and len(targets) <= _INLINE_RENDER_LIMIT:
            rendered = render_fetch(
                self.store, targets=targets, attributes=attributes, recent_uids=selected.recent
            )
            return b"".join(rendered)
        return render_on_loop(
            self.store,
            selected,
            targets=targets,
            attributes=attributes,
            recent_uids=selected.recent,
        )

    async def send_vanished_earlier(
        self, selected: SelectedMailbox, uid_set: SequenceSet, since: int
    ) -> None:
        expunged = await self.context.call(
            self.store.expunged_since, mailbox_id=selected.mailbox_id, modseq=since
        )
        largest = max([*expunged[-1:], *selected.uids[-1:], 0])
        wanted = [uid for uid in expunged if uid_set.contains(uid, largest)]
        if wanted:
            self.untagged(f"VANISHED (EARLIER) {responses.sequence_set_text(wanted)}")

    # --- STORE ---------------------------------------------------------------------------------

    async def do_store(self, command: c.Store) -> str:
        """STORE / UID STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3); the sources feeding the
        mailbox get the change by write-back (`FetchScheduler.write_back`)."""
        selected = self.require_writable()
        await self.send_updates(allow_expunge=command.uid)
        indexes = self.resolve(selected, command.sequence_set, command.uid)
        uids = [
            selected.entries[i].uid
            for i in indexes
            if selected.entries[i].uid not in selected.pending_expunges
        ]
        if command.unchanged_since is not None:
            self.enable_condstore()
        update = await self.context.call(
            self.store.set_flags,
            mailbox_id=selected.mailbox_id,
            uids=uids,
            flags=command.flags,
            mode=command.mode,
            unchanged_since=command.unchanged_since,
            actor=self.actor,
        )
        placed = selected.replace_entries(update.entries)
        # Even a silent STORE must say a new keyword exists before any FETCH shows it.
        self.write_lines(selected.new_keyword_lines())
        if not command.silent:
            condstore, uid = self.condstore, command.uid
            self.write_lines(
                [
                    selected.flags_response(index, entry, condstore=condstore, uid=uid)
                    for index, entry in placed
                ]
            )
        await self.send_updates(allow_expunge=command.uid)
        if update.modified:
            # RFC 7162 §3.1.3: the messages UNCHANGEDSINCE protected, as UIDs or numbers.
            if command.uid:
                failed = update.modified
            else:
                failed = [
                    i + 1 for uid in update.modified if (i := selected.index_of(uid)) is not None
                ]
            modified = responses.sequence_set_text(failed)
            return f"[{ResponseCode.MODIFIED} {modified}] Conditional store completed"
        # Messages another session expunged are skipped and the STORE still succeeds: RFC 2180
        # §4.2.1 allows OK or NO here, and Dovecot (whose behaviour clients are tuned to, and
        # imaptest checks) answers OK; the EXPUNGE follows at the next allowed point.
        return "Store completed"

    # --- SEARCH --------------------------------------------------------------------------------

    async def do_search(self, command: c.Search) -> str:
        selected = self.require_selected()
        if command.charset is not None and command.charset not in _SEARCH_CHARSETS:
            # RFC 3501 §6.4.4: NO with BADCHARSET listing what we support (not BAD).
            raise CommandFailedError(
                "NO", "unsupported charset", f"{ResponseCode.BADCHARSET} (UTF-8 US-ASCII)"
            )
        await self.send_updates(allow_expunge=command.uid)
        if uses_modseq(command.criteria):
            self.enable_condstore()
        settings = self.context.settings
        if count_search_keys(command.criteria) > settings.imap_search_max_keys:
            raise no(f"more than {settings.imap_search_max_keys} search keys", ResponseCode.LIMIT)
        entries = list(selected.entries)
        try:
            async with self.context.search_slots.turn(self.user_id):
                indexes = await self.context.call(
                    search_messages,
                    self.store,
                    criteria=command.criteria,
                    entries=entries,
                    recent_uids=frozenset(selected.recent),
                    deadline=time.monotonic() + settings.imap_search_timeout_seconds,
                )
        except SearchTooCostlyError:
            raise no(
                "search took too long; use fewer or narrower keys", ResponseCode.LIMIT
            ) from None
        # Messages expunged elsewhere but not yet announced keep their numbers and still
        # match on what the session knows of them (flags, UID); their text is gone.
        numbers = [entries[i].uid if command.uid else i + 1 for i in indexes]
        modseqs = [entries[i].modseq for i in indexes] if uses_modseq(command.criteria) else None
        if command.return_options is None:
            modseq_suffix = f" (MODSEQ {max(modseqs)})" if modseqs else ""
            self.untagged("SEARCH" + "".join(f" {n}" for n in numbers) + modseq_suffix)
        else:
            self.untagged(_esearch(command, numbers, modseqs))
        await self.send_updates(allow_expunge=command.uid)
        return "Search completed"

    # --- COPY / MOVE / EXPUNGE -----------------------------------------------------------------

    async def do_copy(self, command: c.Copy | c.Move) -> str:
        selected = self.require_selected()
        is_move = isinstance(command, c.Move)
        if is_move:
            self.require_writable()
        indexes = self.resolve(selected, command.sequence_set, command.uid)
        uids = [selected.entries[i].uid for i in indexes]
        target = await self.find_mailbox(command.mailbox, missing_code=ResponseCode.TRYCREATE)
        operation = self.store.move_messages if is_move else self.store.copy_messages
        try:
            result = await self.context.call(
                operation,
                from_mailbox_id=selected.mailbox_id,
                uids=uids,
                to_mailbox_id=target.id,
                actor=self.actor,
            )
        except StoreError as error:
            raise from_store_error(error) from error
        code = ""
        if result.uid_pairs:
            first_copy = min(pair[1] for pair in result.uid_pairs)
            self.context.recent.note_added((target.id, target.uidvalidity), first_copy)
            sources = responses.sequence_set_text(pair[0] for pair in result.uid_pairs)
            copies = responses.sequence_set_text(pair[1] for pair in result.uid_pairs)
            code = f"[{ResponseCode.COPYUID} {result.uidvalidity} {sources} {copies}] "
        if is_move:
            # RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
            if code:
                self.untagged(f"OK {code}Moved")
            await self.send_updates(allow_expunge=True, force=True)
            return "Move completed"
        await self.send_updates(allow_expunge=command.uid, force=target.id == selected.mailbox_id)
        return f"{code}Copy completed"

    async def do_expunge(self, command: c.Expunge) -> str:
        selected = self.require_writable()
        uids = None
        if command.uid_set is not None:
            uids = [selected.entries[i].uid for i in selected.resolve_uids(command.uid_set)]
        await self.context.call(
            self.store.expunge, mailbox_id=selected.mailbox_id, uids=uids, actor=self.actor
        )
        await self.send_updates(allow_expunge=True, force=True)
        return "Expunge completed"


def _take_chunks(chunks: Iterator[bytes], budget: int = 1 << 20) -> tuple[bytes, bool]:
    """Up to about `budget` bytes of rendered responses, and whether the renderer is done."""
    taken: list[bytes] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= budget:
            return b"".join(taken), False
    return b"".join(taken), True


def _esearch(command: c.Search, numbers: list[int], modseqs: list[int] | None) -> str:
    """RFC 4731 ESEARCH response: `ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 3 ALL 1:3`.

    `modseqs` (parallel to `numbers`) when the criteria used MODSEQ: RFC 7162 §3.1.5 gives
    the highest mod-sequence of the messages the response reports, so MIN alone reports
    the first message's and MAX alone the last one's.
    """
    options = set(command.return_options or ()) or {"ALL"}
    parts = [f'ESEARCH (TAG "{command.tag}")']
    if command.uid:
        parts.append("UID")
    if numbers and "MIN" in options:
        parts.append(f"MIN {numbers[0]}")
    if numbers and "MAX" in options:
        parts.append(f"MAX {numbers[-1]}")
    if "COUNT" in options:
        parts.append(f"COUNT {len(numbers)}")
    if numbers and "ALL" in options:
        parts.append(f"ALL {responses.sequence_set_text(numbers)}")
    if modseqs:
        if options & {"ALL", "COUNT"}:
            reported = modseqs
        else:
            reported = [modseqs[0]] * ("MIN" in options) + [modseqs[-1]] * ("MAX" in options)
        if reported:
            parts.append(f"MODSEQ {max(reported)}")
    return " ".join(parts)
