"""Wakes the sessions that watch a mailbox when a commit changes it (IDLE, pending updates).

Commits in this process reach the hub through the store's change listener: the hub hops onto
the event loop and sets each watcher's flag, so an IDLE session hears of a commit within one
loop turn. Commits by other processes (a `gateway sync` run, another replica on the same
PostgreSQL) are noticed by one poll per interval for all watched mailboxes together, so the
cost does not grow with the number of sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection

log = logging.getLogger("gateway.imap")

# The MODSEQ a deleted mailbox is treated as having reached: above any real one.
_GONE = 2**63 - 1
ReadModseqs = Callable[[Collection[int]], Awaitable[dict[int, int]]]


class MailboxWatch:
    """One session's interest in one mailbox: a dirty flag and an event to await."""

    def __init__(self, mailbox_id: int) -> None:
        self.mailbox_id = mailbox_id
        self.changed = asyncio.Event()

    def mark(self) -> None:
        self.changed.set()


class ChangeHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watches: dict[int, set[MailboxWatch]] = defaultdict(set)
        self._known_modseqs: dict[int, int] = {}
        self._poller: asyncio.Task[None] | None = None

    def watch(self, mailbox_id: int, modseq: int) -> MailboxWatch:
        """Watch a mailbox whose state the caller knows as of `modseq`."""
        watch = MailboxWatch(mailbox_id)
        self._known_modseqs.setdefault(mailbox_id, modseq)
        self._watches[mailbox_id].add(watch)
        return watch

    def unwatch(self, watch: MailboxWatch) -> None:
        watchers = self._watches.get(watch.mailbox_id)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watches[watch.mailbox_id]
                self._known_modseqs.pop(watch.mailbox_id, None)

    def store_changed(self, user_id: int, mailbox_id: int, modseq: int, actor: str) -> None:
        """Store change listener; safe to call from any thread."""
        del user_id, actor
        self.mailbox_changed(mailbox_id, modseq)

    def mailbox_changed(self, mailbox_id: int, modseq: int) -> None:
        """A commit reached `modseq` in a mailbox; safe to call from any thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._wake, mailbox_id, modseq)

    def _wake(self, mailbox_id: int, modseq: int) -> None:
        if modseq > self._known_modseqs.get(mailbox_id, 0):
            self._known_modseqs[mailbox_id] = modseq
        for watch in self._watches.get(mailbox_id, ()):
            watch.mark()

    def start_polling(self, read_modseqs: ReadModseqs, interval: float) -> None:
        self._poller = self._loop.create_task(self._poll(read_modseqs, interval))

    async def stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def _poll(self, read_modseqs: ReadModseqs, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            watched = list(self._watches)
            if not watched:
                continue
            try:
                current = await read_modseqs(watched)
            except Exception:
                log.exception("event=change_poll_failed")
                continue
            for mailbox_id in set(watched) - current.keys():
                # Deleted by another process: wake its sessions, they will find it gone.
                self._wake(mailbox_id, _GONE)
            for mailbox_id, modseq in current.items():
                known = self._known_modseqs.get(mailbox_id)
                self._known_modseqs[mailbox_id] = max(modseq, known or 0)
                if known is not None and modseq > known:
                    self._wake(mailbox_id, modseq)
