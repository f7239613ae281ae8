"""Keep a source's lease alive while its sync runs, whether or not the sync makes progress.

A replica on another host cannot see whether the holder's process still exists
(`leases.owner_is_dead` only works on one host); it can only wait for the lease to expire. A
short lease renewed from its own thread makes that wait short when the holder dies, and never
lets a live sync that is stuck on a slow server (no progress for minutes) lose its source.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from gateway.fetch.errors import SyncError
from gateway.store import MailStore

log = logging.getLogger("gateway.fetch")


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts and how often the holder renews it; tests shrink both."""

    # What another host waits after a holder dies mid-sync.
    ttl_seconds: float = 60.0
    # A quarter of the lease: three renewals may fail (a busy database) before it can lapse.
    renew_seconds: float = 15.0


class LeaseLostError(SyncError):
    """Our lease expired and another process took the source; this sync must stop."""

    def __init__(self) -> None:
        super().__init__("throttled", "lease lost to another gateway process")


class LeaseHeartbeat:
    """Renews `owner`'s lease on a source every `timing.renew_seconds` from a daemon thread,
    from `__enter__` until `__exit__`; `check()` raises once the lease was lost."""

    def __init__(
        self, store: MailStore, *, source_id: int, owner: str, timing: LeaseTiming
    ) -> None:
        self._store = store
        self._source_id = source_id
        self._owner = owner
        self._timing = timing
        self._stopping = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{source_id}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise `LeaseLostError` if another process holds the source now."""
        if self._lost.is_set():
            raise LeaseLostError()

    def _run(self) -> None:
        while not self._stopping.wait(self._timing.renew_seconds):
            try:
                renewed = self._store.renew_source_lease(
                    self._source_id,
                    owner=self._owner,
                    ttl_seconds=self._timing.ttl_seconds,
                    now=datetime.now(UTC),
                )
            except Exception:
                # A database hiccup: the lease still has most of its time; try again next beat.
                log.exception("event=lease_renew_failed source_id=%d", self._source_id)
                continue
            if not renewed:
                log.warning("event=lease_lost source_id=%d owner=%s", self._source_id, self._owner)
                self._lost.set()
                return
