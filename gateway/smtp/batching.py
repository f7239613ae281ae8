"""Group commit: callers arriving while a flush runs share the next one.

Used for everything the submission side makes durable — accepted messages (`intake`), the
record that the upstream took a message, the Sent copies — so that under load one fsync and
one SQLite commit serve many messages, and with no load nothing waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# One flush stays short: a bounded batch is one transaction of bounded size.
MAX_BATCH = 64


class GroupCommit(Generic[Item, Result]):
    """`await submit(item)` returns `flush(items)[i]` for its item, `flush` run in `executor`
    over every item that arrived since the previous flush started."""

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Sequence[Result]],
        executor: Executor,
        *,
        after_flush: Callable[[], None] | None = None,
    ) -> None:
        self._flush_items = flush
        self._executor = executor
        self._after_flush = after_flush
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Wait until `item` is flushed; raises what the flush raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
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
                results = await loop.run_in_executor(self._executor, self._flush_items, items)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            if self._after_flush is not None:
                self._after_flush()

    async def drain(self) -> None:
        """Let the flush in progress finish (its callers are owed an answer)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
