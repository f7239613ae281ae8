"""The fetch scheduler: syncs each source when it is due, a bounded number at a time.

Due-ness comes from the source rows (`next_run_at`, written by the runner after every attempt,
with its failure backoff) plus a per-source jitter, so a thousand sources sharing one poll
interval do not all fire in the same instant. Requests from outside (push activity, local flag
changes to write back, "sync now") run at once, coalesced per source. The blocking syncs run in
a thread pool sized to the concurrency: a hanging source holds one slot, never the event loop
or the other sources (its own network timeouts end it).

Everything below except `request_sync` and the store change listener runs on the event loop,
so the bookkeeping needs no locks; those two hop onto the loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from gateway.fetch.actors import LocalChange
from gateway.fetch.errors import SyncError
from gateway.fetch.imap_reuse import ImapConnectionCache
from gateway.fetch.runner import SourceBusyError, sync_source_once
from gateway.store import MailStore, SourceInfo

log = logging.getLogger("gateway.fetch")

SyncFunction = Callable[[MailStore, SourceInfo], None]
Clock = Callable[[], datetime]

JITTER_FRACTION = 0.1
MAX_JITTER_SECONDS = 30.0
CHANGE_DEBOUNCE_SECONDS = 1.0
# How often the sources revision is read: a source added, edited or given a new password by
# `gateway source …` or another replica syncs within this, not at the next rescan.
SOURCE_WATCH_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 10.0
# Never sleep less than this between loop turns, so a rounding error cannot spin the loop.
_MIN_WAIT_SECONDS = 0.05
_SETTLE_POLL_SECONDS = 0.01


def utc_now() -> datetime:
    return datetime.now(UTC)


class SourceWatchers(Protocol):
    """Something that keeps per-source watchers (IMAP IDLE) in step with the source list."""

    def sync_sources(self, sources: Sequence[SourceInfo]) -> None: ...

    def stop(self) -> None: ...


class FetchScheduler:
    """Runs due and requested syncs with bounded concurrency; `start()` it on the event loop."""

    def __init__(
        self,
        store: MailStore,
        *,
        concurrency: int,
        rescan_seconds: float,
        sync: SyncFunction | None = None,
        clock: Clock = utc_now,
        change_debounce_seconds: float = CHANGE_DEBOUNCE_SECONDS,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
        rng: random.Random | None = None,
        source_watch_seconds: float = SOURCE_WATCH_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._store = store
        self._concurrency = concurrency
        self._rescan_seconds = rescan_seconds
        # By default IMAP syncs keep their logged-in connection for the source's next sync
        # (push and polls then skip connect + LOGIN); closed when the scheduler stops.
        self._connections = ImapConnectionCache()
        self._sync = sync or partial(sync_source_once, connections=self._connections)
        self._clock = clock
        self._change_debounce = change_debounce_seconds
        self._stop_timeout = stop_timeout
        # Jitter only spreads load; it needs no cryptographic randomness.
        self._rng = rng or random.Random()  # noqa: S311
        self._sources: dict[int, SourceInfo] = {}
        self._queued: dict[int, str] = {}  # source id -> reason, in request order
        self._running: dict[int, SourceInfo] = {}
        self._rerun: dict[int, str] = {}  # requested while running: run once more after
        self._not_before: dict[int, datetime] = {}
        self._jitter: dict[int, tuple[int, float]] = {}  # id -> (poll interval, offset seconds)
        self._change_timers: dict[int, asyncio.TimerHandle] = {}  # per user, while debouncing
        self._changed_mailboxes: dict[int, set[int]] = {}  # per user, while debouncing
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._parked = False  # the loop waits with nothing left to start
        self._rescan_requested = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._watchers: SourceWatchers | None = None
        self._source_watch_seconds = source_watch_seconds
        self._source_watch: asyncio.Task[None] | None = None

    def attach_watchers(self, watchers: SourceWatchers) -> None:
        """Keep `watchers` in step with the sources on every rescan, and stop them with us."""
        self._watchers = watchers

    @property
    def watchers(self) -> SourceWatchers | None:
        return self._watchers

    async def start(self) -> None:
        """Begin scheduling on the running loop; the first scan of sources happens at once."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix="fetch-sync"
        )
        self._store.add_change_listener(self._store_changed)
        self._main = self._loop.create_task(self._run(), name="fetch-scheduler")
        self._source_watch = self._loop.create_task(
            self._watch_source_changes(), name="fetch-source-watch"
        )
        log.info(
            "event=scheduler_started concurrency=%d rescan_seconds=%s",
            self._concurrency,
            self._rescan_seconds,
        )

    async def stop(self) -> None:
        """Stop scheduling, stop the watchers, wait (bounded) for running syncs to finish."""
        if self._main is None or self._stopping:
            return
        self._stopping = True
        if self._source_watch is not None:
            self._source_watch.cancel()
            await asyncio.gather(self._source_watch, return_exceptions=True)
        with contextlib.suppress(ValueError):
            self._store.remove_change_listener(self._store_changed)
        for handle in self._change_timers.values():
            handle.cancel()
        self._change_timers.clear()
        # The loop ends at its next turn; cancelling is only the fallback for a store read
        # that hangs (cancelling a task parked in `asyncio.wait_for` can be lost on 3.11).
        self._wake.set()
        _done, pending = await asyncio.wait({self._main}, timeout=self._stop_timeout)
        for task in pending:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._watchers is not None:
            await asyncio.to_thread(self._watchers.stop)
        await self._wait_for_running_syncs()
        await asyncio.to_thread(self._connections.close_all)
        if self._executor is not None:
            # A sync still running keeps its thread until its network timeout ends it.
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("event=scheduler_stopped")

    def check_due_sources(self) -> None:
        """Look at every source's due time now rather than at the next planned turn (after
        the injected clock moved, or source rows changed); safe to call from any thread."""
        self._call_on_loop(self._wake_now)

    def _wake_now(self) -> None:
        self._parked = False  # so `settled` waits for the turn this wake-up causes
        self._wake.set()

    async def settled(self) -> None:
        """Return once nothing is queued, running, debouncing or being looked up, and the
        loop waits for its next due time: what tests wait for instead of a guessed delay."""
        await asyncio.sleep(0)  # callbacks already handed to the loop run first
        while (
            not self._parked
            or self._queued
            or self._running
            or self._change_timers
            or self._tasks
            or self._rescan_requested
        ):
            await asyncio.sleep(_SETTLE_POLL_SECONDS)

    def request_sync(self, source_id: int, *, reason: str) -> None:
        """Sync a source soon, whatever its schedule; safe to call from any thread.

        Requests for a source that is already queued are merged into it; a request for a
        source that is syncing makes it sync once more afterwards (the new mail may have
        arrived after that sync listed the server).
        """
        self._call_on_loop(self._enqueue, source_id, reason)

    # --- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_rescan = loop.time()
        while not self._stopping:
            if self._rescan_requested or loop.time() >= next_rescan:
                self._rescan_requested = False
                await self._rescan()
                next_rescan = loop.time() + self._rescan_seconds
            if self._stopping:  # stop() ran while we read the sources
                return
            until_due = self._queue_due_sources()
            self._start_queued()
            # No await between the bookkeeping above and this clear, so no wake-up is lost.
            self._wake.clear()
            timeout = max(_MIN_WAIT_SECONDS, min(until_due, next_rescan - loop.time()))
            self._parked = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._parked = False

    async def _watch_source_changes(self) -> None:
        """Rescan at once when any source was added, changed or removed (in this process,
        another `gateway` command or another replica: the revision lives in the database)."""
        seen: int | None = None
        while not self._stopping:
            try:
                revision: int | None = await asyncio.to_thread(self._store.sources_revision)
            except Exception:
                log.exception("event=source_watch_failed")
                revision = seen
            if seen is not None and revision != seen:
                log.info("event=sources_changed action=rescan")
                self._rescan_requested = True
                self._wake_now()
            seen = revision
            await asyncio.sleep(self._source_watch_seconds)

    async def _rescan(self) -> None:
        try:
            sources = await asyncio.to_thread(self._store.list_sources)
        except Exception:
            log.exception("event=scheduler_rescan_failed")
            return
        self._sources = {source.id: source for source in sources}
        for source in sources:
            if source.next_run_at is None:
                # Never run, or just changed (`update_source`, a new password): due now, not
                # an interval after the sync it had before.
                self._not_before.pop(source.id, None)
        for table in (self._not_before, self._jitter):
            for source_id in set(table) - set(self._sources):
                del table[source_id]
        enabled = {source.id for source in sources if source.enabled}
        await asyncio.to_thread(self._connections.retain, enabled)
        if self._watchers is not None:
            try:
                await asyncio.to_thread(self._watchers.sync_sources, sources)
            except Exception:
                log.exception("event=push_watchers_update_failed")

    def _queue_due_sources(self) -> float:
        """Queue every enabled source whose time has come; seconds until the next one is due."""
        now = self._clock()
        until_next = math.inf
        for source in self._sources.values():
            if not source.enabled or source.id in self._running or source.id in self._queued:
                continue
            if source.credentials_rejected:
                continue  # stopped until its password changes (a rescan then sees it)
            due_at = self._due_at(source)
            if due_at is None or due_at <= now:
                self._queued[source.id] = "schedule"
            else:
                until_next = min(until_next, (due_at - now).total_seconds())
        return until_next

    def _due_at(self, source: SourceInfo) -> datetime | None:
        """When the source should run next; None: now (it has never run)."""
        candidates = [
            moment
            for moment in (source.next_run_at, self._not_before.get(source.id))
            if moment is not None
        ]
        if not candidates:
            return None
        return max(candidates) + timedelta(seconds=self._jitter_for(source))

    def _jitter_for(self, source: SourceInfo) -> float:
        interval, offset = self._jitter.get(source.id, (-1, 0.0))
        if interval != source.poll_interval:
            spread = min(MAX_JITTER_SECONDS, JITTER_FRACTION * source.poll_interval)
            offset = self._rng.uniform(0.0, spread)
            self._jitter[source.id] = (source.poll_interval, offset)
        return offset

    def _start_queued(self) -> None:
        for source_id in list(self._queued):
            if len(self._running) >= self._concurrency:
                return
            source = self._sources.get(source_id)
            if source is None and self._rescan_requested:
                continue  # requested before we saw it; the next rescan will know it
            reason = self._queued.pop(source_id)
            if source is None or not source.enabled or source.credentials_rejected:
                log.info(
                    "event=sync_request_dropped source_id=%d reason=%s why=%s",
                    source_id,
                    reason,
                    "unknown_source"
                    if source is None
                    else ("disabled" if not source.enabled else "credentials_rejected"),
                )
                continue
            self._launch(source, reason)

    def _launch(self, source: SourceInfo, reason: str) -> None:
        assert self._loop is not None  # noqa: S101 - only called after start()
        self._running[source.id] = source
        task = self._loop.create_task(self._sync_one(source, reason), name=f"sync-{source.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _sync_one(self, source: SourceInfo, reason: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        log.info(
            "event=sync_started source=%s source_id=%d user_id=%d protocol=%s reason=%s",
            source.label,
            source.id,
            source.user_id,
            source.protocol,
            reason,
        )
        outcome = "ok"
        try:
            await loop.run_in_executor(self._executor, self._sync, self._store, source)
        except SourceBusyError:
            outcome = "busy"
        except SyncError as error:
            # The runner already recorded and logged the failure with its message.
            outcome = f"failed error_class={error.error_class}"
        except Exception:
            outcome = "crashed"
            log.exception("event=sync_crashed source=%s source_id=%d", source.label, source.id)
        finally:
            self._finish(source)
        log.info(
            "event=sync_finished source=%s source_id=%d outcome=%s seconds=%.2f",
            source.label,
            source.id,
            outcome,
            loop.time() - started,
        )
        if not self._stopping:
            await self._refresh_user_sources(source.user_id)

    def _finish(self, source: SourceInfo) -> None:
        del self._running[source.id]
        # The runner writes next_run_at, but our copy of the row is older than that write and
        # a lease conflict writes nothing: never run a source again within its interval unless
        # someone asks for it.
        self._not_before[source.id] = self._clock() + timedelta(seconds=source.poll_interval)
        rerun = self._rerun.pop(source.id, None)
        if rerun is not None:
            self._queued[source.id] = rerun
        self._wake.set()

    async def _refresh_user_sources(self, user_id: int) -> None:
        """Re-read one user's sources, so the next due time is the one the runner just wrote."""
        try:
            fresh = await asyncio.to_thread(self._store.list_sources, user_id=user_id)
        except Exception:
            log.exception("event=scheduler_refresh_failed user_id=%d", user_id)
            return
        for source_id in [s.id for s in self._sources.values() if s.user_id == user_id]:
            del self._sources[source_id]
        self._sources.update((source.id, source) for source in fresh)
        self._wake.set()

    def _enqueue(self, source_id: int, reason: str) -> None:
        if self._stopping:
            return
        if source_id in self._running:
            self._rerun.setdefault(source_id, reason)
            return
        if source_id in self._queued:
            log.debug("event=sync_request_coalesced source_id=%d reason=%s", source_id, reason)
            return
        if source_id not in self._sources:
            self._rescan_requested = True
        self._queued[source_id] = reason
        self._wake.set()

    async def _wait_for_running_syncs(self) -> None:
        tasks = set(self._tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self._stop_timeout)
        if pending:
            log.warning(
                "event=scheduler_stop_timeout still_running=%s",
                ",".join(str(source_id) for source_id in sorted(self._running)),
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # --- write-back of local changes -------------------------------------------------------

    def _store_changed(self, user_id: int, mailbox_id: int, modseq: int, actor: str) -> None:
        """Store change listener (any thread): turns a device's commit into a `LocalChange`."""
        change = LocalChange.from_store(user_id, mailbox_id, modseq, actor)
        if change is not None:  # a sync engine's own commit: writing it back would echo it
            self._call_on_loop(self.note_local_change, change)

    def note_local_change(self, change: LocalChange) -> None:
        """Write a device's change back about a second later (on the loop); a burst of changes
        to one user's mailboxes makes one `write_back` of all the mailboxes it touched."""
        if self._stopping:
            return
        self._changed_mailboxes.setdefault(change.user_id, set()).add(change.mailbox_id)
        if change.user_id in self._change_timers:
            return
        assert self._loop is not None  # noqa: S101 - listener registered in start()
        self._change_timers[change.user_id] = self._loop.call_later(
            self._change_debounce, self._flush_local_changes, change.user_id
        )

    def _flush_local_changes(self, user_id: int) -> None:
        self._change_timers.pop(user_id, None)
        mailbox_ids = self._changed_mailboxes.pop(user_id, set())
        if mailbox_ids and self._loop is not None and not self._stopping:
            task = self._loop.create_task(self.write_back(mailbox_ids), name="write-back")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    async def write_back(self, mailbox_ids: Collection[int]) -> None:
        """Sync the IMAP sources feeding these mailboxes, so a change made on a device reaches
        them (DESIGN invariant 4: within one sync cycle); sources in failure backoff wait."""
        try:
            feeding = await asyncio.to_thread(self._store.sources_feeding, mailbox_ids=mailbox_ids)
        except Exception:
            log.exception("event=write_back_lookup_failed")
            return
        now = self._clock()
        for source_id in sorted(feeding):
            source = self._sources.get(source_id)
            if source is None or not source.enabled or source.protocol != "imap":
                continue
            if source.credentials_rejected or _in_failure_backoff(source, now):
                # The server is failing; asking again on every flag change would only hammer it.
                continue
            self._enqueue(source.id, "local_change")

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # the loop parks only once every task has ended (`settled`)

    def _call_on_loop(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or self._stopping:
            return
        # The loop may close between the check and the call during shutdown; nothing to do then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)


def _in_failure_backoff(source: SourceInfo, now: datetime) -> bool:
    return (
        source.consecutive_failures > 0
        and source.next_run_at is not None
        and source.next_run_at > now
    )
