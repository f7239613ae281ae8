"""Bounds on the work SEARCH may take: keys per command, time, and a share of the I/O threads.

Eight searches of ~4,000 `NOT TEXT` keys each once held every I/O thread for two minutes and
other users could not log in. Now a command holds at most `imap_search_max_keys` keys, runs
at most `imap_search_timeout_seconds`, one user runs at most `imap_searches_per_user` at once,
and all searches together leave `RESERVED_THREADS` I/O threads to logins and small commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.imap.protocol.search_keys import SearchAnd, SearchKey, SearchNot, SearchOr

# I/O threads no search may take: LOGIN, SELECT and FETCH of other sessions keep moving.
RESERVED_THREADS = 2


class SearchTooCostlyError(Exception):
    """A search ran past its time budget; the command ends with NO [LIMIT]."""


def count_search_keys(key: SearchKey) -> int:
    """Keys in a criteria tree, each NOT, OR and parenthesised group counted too."""
    count = 0
    pending = [key]
    while pending:
        node = pending.pop()
        count += 1
        if isinstance(node, SearchNot):
            pending.append(node.key)
        elif isinstance(node, SearchOr):
            pending.extend((node.left, node.right))
        elif isinstance(node, SearchAnd):
            pending.extend(node.keys)
    return count


class SearchSlots:
    """Turns for running searches: so many per user, so many in all."""

    def __init__(self, *, per_user: int, io_threads: int) -> None:
        self._per_user = per_user
        self._total = asyncio.Semaphore(max(1, io_threads - RESERVED_THREADS))
        self._users: dict[int, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def turn(self, user_id: int) -> AsyncIterator[None]:
        semaphore, waiting = self._users.get(user_id, (asyncio.Semaphore(self._per_user), 0))
        self._users[user_id] = (semaphore, waiting + 1)
        try:
            async with semaphore, self._total:
                yield
        finally:
            semaphore, waiting = self._users[user_id]
            if waiting == 1:
                del self._users[user_id]
            else:
                self._users[user_id] = (semaphore, waiting - 1)
