"""Recent mailbox snapshots shared by this process's sessions, so SELECT reads only a delta.

Twenty clients re-selecting a 10,000-message INBOX would otherwise each load every entry
from the database. A cached snapshot plus `mailbox_delta` since its MODSEQ is exactly the
mailbox as of the delta's snapshot, so the result is as consistent as a fresh load.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from gateway.store.flags import SEEN
from gateway.store.mailbox_sync import MailboxDelta, MailboxSnapshot
from gateway.store.views import EntryInfo, MailboxInfo

if TYPE_CHECKING:
    from gateway.imap.context import ServerContext

DEFAULT_CAPACITY = 64


def apply_delta(snapshot: MailboxSnapshot, delta: MailboxDelta) -> MailboxSnapshot:
    """The snapshot moved forward by a delta: re-flagged entries replaced, new ones appended."""
    if not delta.changed and not delta.expunged:
        return MailboxSnapshot(delta.mailbox, snapshot.entries, snapshot.blob_hashes)
    by_uid: dict[int, EntryInfo] = {entry.uid: entry for entry in snapshot.entries}
    blob_hashes = dict(snapshot.blob_hashes)
    gone = {
        entry.message_id for uid in delta.expunged if (entry := by_uid.pop(uid, None)) is not None
    }
    if gone:
        # A COPY into the same mailbox shares the message: keep its blob while a UID remains.
        gone -= {entry.message_id for entry in by_uid.values()}
        for message_id in gone:
            blob_hashes.pop(message_id, None)
    blob_hashes.update(delta.blob_hashes)
    last_uid = snapshot.entries[-1].uid if snapshot.entries else 0
    appended = False
    for entry in delta.changed:
        by_uid[entry.uid] = entry
        appended = appended or entry.uid > last_uid
    entries = list(by_uid.values())
    if appended:
        # Dicts keep insertion order: only entries added after the old tail are out of place.
        entries.sort(key=lambda entry: entry.uid)
    return MailboxSnapshot(delta.mailbox, entries, blob_hashes)


class CachedMailbox:
    """A snapshot and what every SELECT derives from it, computed once and then shared.

    Sessions hold these lists read-only until they change their own view (copy on write), so
    a thousand sessions on one big INBOX cost one copy of it, not a thousand.
    """

    __slots__ = ("_first_unseen", "keywords", "rendered", "snapshot", "uids")

    def __init__(self, snapshot: MailboxSnapshot) -> None:
        self.snapshot = snapshot
        self.uids: list[int] = [entry.uid for entry in snapshot.entries]
        keywords: set[str] = set()
        for entry in snapshot.entries:
            if entry.keywords:
                keywords.update(entry.keywords)
        self.keywords = frozenset(keywords)
        self._first_unseen: int | None = -1
        # Whole-mailbox FETCH responses of entry-only items (`FETCH 1:* (FLAGS)`), by item
        # names: every session whose view is still this snapshot gets the same bytes.
        self.rendered: dict[tuple[str, ...], bytes] = {}

    @property
    def first_unseen(self) -> int | None:
        """1-based number of the first message without \\Seen, None if all are seen."""
        if self._first_unseen == -1:
            self._first_unseen = next(
                (n for n, entry in enumerate(self.snapshot.entries, 1) if not entry.flags & SEEN),
                None,
            )
        return self._first_unseen


class SnapshotCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._mailboxes: OrderedDict[int, CachedMailbox] = OrderedDict()

    async def load(self, context: ServerContext, mailbox: MailboxInfo) -> CachedMailbox:
        mailbox_id = mailbox.id
        cached = self._mailboxes.get(mailbox_id)
        if cached is not None and cached.snapshot.mailbox.uidvalidity != mailbox.uidvalidity:
            # SQLite may give a deleted mailbox's id to the next one created: not the same box.
            cached = None
        if cached is None:
            snapshot = await context.call(context.store.load_mailbox, mailbox_id=mailbox_id)
            loaded = CachedMailbox(snapshot)
        else:
            delta = await context.call(
                context.store.mailbox_delta,
                mailbox_id=mailbox_id,
                since_modseq=cached.snapshot.mailbox.highestmodseq,
            )
            if not delta.changed and not delta.expunged:
                return cached
            loaded = CachedMailbox(apply_delta(cached.snapshot, delta))
        current = self._mailboxes.get(mailbox_id)
        # Another session may have stored a newer one while we awaited: keep the newest.
        newest = loaded.snapshot.mailbox.highestmodseq
        if (
            current is None
            or current.snapshot.mailbox.uidvalidity != mailbox.uidvalidity
            or current.snapshot.mailbox.highestmodseq <= newest
        ):
            self._mailboxes[mailbox_id] = loaded
        self._mailboxes.move_to_end(mailbox_id)
        while len(self._mailboxes) > self.capacity:
            self._mailboxes.popitem(last=False)
        return loaded

    def forget(self, mailbox_id: int) -> None:
        self._mailboxes.pop(mailbox_id, None)
