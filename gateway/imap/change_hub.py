"""Wakes the sessions that watch a mailbox when a commit changes it (IDLE, pending updates).

The store calls listeners from whichever thread committed; the hub hops onto the event loop
and sets each watcher's flag, so an IDLE session hears of a commit within one loop turn
rather than on a polling interval.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class MailboxWatch:
    """One session's interest in one mailbox: a dirty flag and an event to await."""

    def __init__(self, mailbox_id: int) -> None:
        self.mailbox_id = mailbox_id
        self.changed = asyncio.Event()
        self.mailbox_list_changed = False

    def mark(self) -> None:
        self.changed.set()


class ChangeHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watches: dict[int, set[MailboxWatch]] = defaultdict(set)

    def watch(self, mailbox_id: int) -> MailboxWatch:
        watch = MailboxWatch(mailbox_id)
        self._watches[mailbox_id].add(watch)
        return watch

    def unwatch(self, watch: MailboxWatch) -> None:
        watchers = self._watches.get(watch.mailbox_id)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watches[watch.mailbox_id]

    def store_changed(self, user_id: int, mailbox_id: int, modseq: int) -> None:
        """Store change listener; safe to call from any thread."""
        del user_id, modseq
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._wake, mailbox_id)

    def _wake(self, mailbox_id: int) -> None:
        for watch in self._watches.get(mailbox_id, ()):
            watch.mark()
