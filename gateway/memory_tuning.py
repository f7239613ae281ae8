"""Allocator and garbage-collector settings for the long-running server.

glibc gives threads that allocate concurrently their own malloc arenas (up to eight per core),
and each arena keeps the high-water mark of what its threads once built — the rendering of a
large FETCH, a batch of rows — long after it was freed. For a server whose memory should stay
flat across many idle connections, two arenas are plenty: the hot paths hold the GIL anyway.
The cyclic garbage collector is tuned for large responses (`tune_garbage_collector`).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

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
