"""glibc allocator settings for a long-running server with a pool of worker threads.

glibc gives threads that allocate concurrently their own malloc arenas (up to eight per core),
and each arena keeps the high-water mark of what its threads once built — the rendering of a
large FETCH, a batch of rows — long after it was freed. For a server whose memory should stay
flat across many idle connections, two arenas are plenty: the hot paths hold the GIL anyway.
"""

from __future__ import annotations

import ctypes
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
