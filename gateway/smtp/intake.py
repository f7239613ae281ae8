"""Group commit for accepted messages: concurrent DATA ends share one fsync and one commit.

A session's `250` waits for `submit`, which returns once its message is durable
(`MailStore.enqueue_outbound_messages`). While one batch is being flushed, the messages that
arrive meanwhile gather into the next, so the cost of a sync is shared across sessions
under load and adds nothing when there is none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta

from gateway.store import MailStore
from gateway.store.views import OutboundSubmission

# A batch is flushed as one syncfs and one transaction; bounded so one flush stays short.
MAX_BATCH = 64


class QueueIntake:
    def __init__(
        self,
        store: MailStore,
        executor: Executor,
        *,
        lifetime: timedelta,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._executor = executor
        self._lifetime = lifetime
        self._clock = clock
        self._on_queued = on_queued
        self._waiting: list[tuple[OutboundSubmission, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: OutboundSubmission) -> int:
        """Queue `item` durably; its queue id. Raises what the store raised."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            items = [item for item, _ in batch]
            try:
                ids = await loop.run_in_executor(
                    self._executor,
                    lambda items=items: self._store.enqueue_outbound_messages(  # type: ignore[misc]
                        items=items, now=self._clock(), lifetime=self._lifetime
                    ),
                )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), queue_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(queue_id)
            self._on_queued()

    async def stop(self) -> None:
        """Let the batch in flight finish (its clients are owed an answer)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
