"""Background search indexing in `gateway serve`: the body text of fetched mail, after it lands.

Fetchers store mail without decoding its body text for SEARCH (`defer_search_text`), which
keeps a first sync of a large mailbox at full speed; SEARCH reads those blobs until this task
has filled the text in (`gateway/store/search_index.py`). It waits until the store has been
quiet for a moment, so that it uses the worker processes between sync batches rather than
during them, but never longer than `max_delay` while mail keeps changing. While idle, it also
stops ingest workers nobody has used for `worker_idle_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway.store import MailStore

log = logging.getLogger("gateway.search")


class SearchIndexer:
    def __init__(
        self,
        store: MailStore,
        *,
        quiet_seconds: float = 2.0,
        max_delay: float = 30.0,
        poll_seconds: float = 60.0,
        worker_idle_seconds: float = 120.0,
    ) -> None:
        self.store = store
        self.quiet_seconds = quiet_seconds
        self.max_delay = max_delay
        self.poll_seconds = poll_seconds
        self.worker_idle_seconds = worker_idle_seconds
        self.indexed = 0
        self._last_change = float("-inf")
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._batch: asyncio.Future[int] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.store.add_change_listener(self._on_change)
        self._task = asyncio.create_task(self._run(), name="search-indexer")

    async def stop(self) -> None:
        self.store.remove_change_listener(self._on_change)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._batch is not None:
            # The thread cannot be interrupted; let its batch finish before the store closes.
            await asyncio.wait([self._batch])
            self._batch = None

    def _on_change(self, user_id: int, mailbox_id: int, modseq: int, actor: str) -> None:
        # Called on whichever thread committed.
        self._last_change = time.monotonic()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        held_since = time.monotonic()
        while True:
            await self._wait_for_quiet(held_since)
            # Cleared before looking, so a commit during the batch is not missed.
            self._wake.clear()
            self._batch = asyncio.ensure_future(asyncio.to_thread(self.store.index_search_text))
            try:
                done = await asyncio.shield(self._batch)
            except Exception:
                log.exception("event=search_index_failed")
                done = 0
                await asyncio.sleep(self.poll_seconds)
            self._batch = None
            if done:
                self.indexed += done
                log.debug("event=search_indexed messages=%d total=%d", done, self.indexed)
                continue
            # Nothing to index: ingest workers nobody used for a while give their memory back.
            await asyncio.to_thread(self.store.release_idle_workers, self.worker_idle_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            held_since = time.monotonic()

    async def _wait_for_quiet(self, held_since: float) -> None:
        """Until no commit for `quiet_seconds`, or `max_delay` after work was first waiting."""
        while True:
            now = time.monotonic()
            quiet_for = now - self._last_change
            if quiet_for >= self.quiet_seconds or now - held_since >= self.max_delay:
                return
            await asyncio.sleep(min(self.quiet_seconds - quiet_for, self.max_delay))
