"""Recent mailbox snapshots shared by this process's sessions, so SELECT reads only a delta.

Twenty clients re-selecting a 10,000-message INBOX would otherwise each load every entry
from the database. A cached snapshot plus `mailbox_delta` since its MODSEQ is exactly the
mailbox as of the delta's snapshot, so the result is as consistent as a fresh load.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from gateway.store.mailbox_sync import MailboxDelta, MailboxSnapshot
from gateway.store.views import EntryInfo

if TYPE_CHECKING:
    from gateway.imap.context import ServerContext

DEFAULT_CAPACITY = 64


def apply_delta(snapshot: MailboxSnapshot, delta: MailboxDelta) -> MailboxSnapshot:
    """The snapshot moved forward by a delta: re-flagged entries replaced, new ones appended."""
    if not delta.changed and not delta.expunged:
        return MailboxSnapshot(delta.mailbox, snapshot.entries)
    by_uid: dict[int, EntryInfo] = {entry.uid: entry for entry in snapshot.entries}
    for uid in delta.expunged:
        by_uid.pop(uid, None)
    last_uid = snapshot.entries[-1].uid if snapshot.entries else 0
    appended = False
    for entry in delta.changed:
        by_uid[entry.uid] = entry
        appended = appended or entry.uid > last_uid
    entries = list(by_uid.values())
    if appended:
        # Dicts keep insertion order: only entries added after the old tail are out of place.
        entries.sort(key=lambda entry: entry.uid)
    return MailboxSnapshot(delta.mailbox, entries)


class SnapshotCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._snapshots: OrderedDict[int, MailboxSnapshot] = OrderedDict()

    async def load(self, context: ServerContext, mailbox_id: int) -> MailboxSnapshot:
        cached = self._snapshots.get(mailbox_id)
        if cached is None:
            snapshot = await context.call(context.store.load_mailbox, mailbox_id=mailbox_id)
        else:
            delta = await context.call(
                context.store.mailbox_delta,
                mailbox_id=mailbox_id,
                since_modseq=cached.mailbox.highestmodseq,
            )
            snapshot = apply_delta(cached, delta)
        current = self._snapshots.get(mailbox_id)
        # Another session may have stored a newer one while we awaited: keep the newest.
        if current is None or current.mailbox.highestmodseq <= snapshot.mailbox.highestmodseq:
            self._snapshots[mailbox_id] = snapshot
        self._snapshots.move_to_end(mailbox_id)
        while len(self._snapshots) > self.capacity:
            self._snapshots.popitem(last=False)
        return snapshot

    def forget(self, mailbox_id: int) -> None:
        self._snapshots.pop(mailbox_id, None)
