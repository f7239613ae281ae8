"""Allocator and garbage-collector settings for the long-running server.

glibc gives threads that allocate concurrently their own malloc arenas (up to eight per core),
and each arena keeps the high-water mark of what its threads once built — the rendering of a
large FETCH, a batch of rows — long after it was freed. For a server whose memory should stay
flat across many idle connections, two arenas are plenty: the hot paths hold the GIL anyway.
The cyclic garbage collector is tuned for large responses (`tune_garbage_collector`), and
freed heap goes back to the OS once the server goes quiet (`HeapTrimmer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("gateway.server")

_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's arenas; must run before the first thread starts. An operator's
    `MALLOC_ARENA_MAX` wins; on another C library this does nothing. True if applied."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    applied = bool(mallopt(_M_ARENA_MAX, arenas))
    log.debug("event=malloc_arenas_limited arenas=%d applied=%s", arenas, applied)
    return applied


# Young collections every this many container allocations instead of CPython's 700.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect cycles less often, and never again walk what start-up built.

    With CPython's default thresholds a `FETCH 1:*` of a 10,000-message mailbox, which
    allocates tens of thousands of tuples, ran dozens of collections, and the older ones walked
    every cached snapshot and session again: about 10 ms of a 60 ms command here. Reference
    counting frees nearly everything on its own; the collector is only for cycles, which can
    wait for 50,000 allocations. `gc.freeze` moves the objects of start-up (modules, settings,
    the store) out of every future collection.
    """
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)
    log.debug("event=gc_tuned threshold=%s", gc.get_threshold())


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the OS (glibc `malloc_trim`), not just its top.

    Python frees the objects of a large FETCH or an APPEND burst, but the pages stay in the
    process between long-lived allocations: measured after the IMAP benchmark's operations,
    184 → 151 MB RSS (one trim by hand). True if memory was returned; False as well on
    another C library.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


class HeapTrimmer:
    """Calls `release_free_heap` once the process goes quiet after a burst of work.

    Work is measured as this process's CPU time, so every part (IMAP, fetching, the admin API)
    counts without telling anyone. A trim walks the heap for a few milliseconds, in a thread;
    it holds the allocator's locks meanwhile, so the event loop's next `malloc` may wait that
    long, which is why it runs only once the process is quiet.
    """

    def __init__(
        self,
        *,
        period: float = 1.0,
        burst_cpu_seconds: float = 0.1,
        quiet_cpu_fraction: float = 0.05,
        cpu_time: Callable[[], float] = time.process_time,
        trim: Callable[[], bool] = release_free_heap,
    ) -> None:
        self.period = period
        self.burst_cpu_seconds = burst_cpu_seconds
        self.quiet_cpu_fraction = quiet_cpu_fraction
        self._cpu_time = cpu_time
        self._trim = trim
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heap-trimmer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        last = self._cpu_time()
        since_trim = 0.0
        while True:
            await asyncio.sleep(self.period)
            now = self._cpu_time()
            used, last = now - last, now
            since_trim += used
            if (
                since_trim >= self.burst_cpu_seconds
                and used <= self.quiet_cpu_fraction * self.period
            ):
                try:
                    returned = await asyncio.to_thread(self._trim)
                except Exception:
                    # Never worth stopping the server, nor the next trims, for.
                    log.exception("event=heap_trim_failed")
                    returned = False
                log.debug(
                    "event=heap_trimmed after_cpu_seconds=%.1f returned=%s", since_trim, returned
                )
                since_trim = 0.0
                last = self._cpu_time()  # the trim's own work is not the next burst
