"""Download ahead on a background thread while the store commits what already arrived.

A first sync spends its time in two places that can overlap: waiting for the server and
committing to the store (blob sync, analysis, SQL). `Prefetcher` runs the downloads for batch
k+1 (and k+2) on one thread while the caller commits batch k. Only that thread touches the
connection while it runs, so the caller must not use the connection until the `with` block
ends (large messages are streamed by the caller between prefetched runs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")
_POLL_SECONDS = 0.2


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T, Item]):
    """Iterate `produce(batch)` for each batch, produced up to `depth` batches ahead."""

    def __init__(
        self,
        produce: Callable[[T], list[Item]],
        batches: Sequence[T],
        *,
        depth: int = 2,
    ) -> None:
        self._produce = produce
        self._batches = batches
        self._results: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imap-prefetch", daemon=True)

    def __enter__(self) -> Iterator[list[Item]]:
        self._thread.start()
        return self._iterate()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()
        # The thread notices within one poll, or once its current network read returns
        # (bounded by the connection's timeout).
        self._thread.join()

    def _iterate(self) -> Iterator[list[Item]]:
        for _ in self._batches:
            result = self._results.get()
            if isinstance(result, _Failed):
                raise result.error
            yield result  # type: ignore[misc]

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if self.stopping.is_set():
                    return
                _put(self._results, self._produce(batch), self.stopping)
        except BaseException as error:
            _put(self._results, _Failed(error), self.stopping)


def _put(target: queue.Queue[object], value: object, stopping: threading.Event) -> None:
    while not stopping.is_set():
        try:
            target.put(value, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            continue
