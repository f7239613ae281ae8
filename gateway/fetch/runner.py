"""Run one source's sync under a lease, and record the outcome for the admin panel.

`sync_source_once` is what `gateway sync` (and later the scheduler) calls per source.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from gateway.fetch.errors import SyncError
from gateway.fetch.leases import lease_owner_id, owner_is_dead
from gateway.fetch.pop3 import PartialSyncError, SyncReport, sync_pop3_source
from gateway.store import MailStore, SourceInfo

log = logging.getLogger("gateway.fetch")

LEASE_TTL_SECONDS = 600.0
BACKOFF_CAP_SECONDS = 3600.0


class SourceBusyError(SyncError):
    """Another live process holds the source's lease; nothing was attempted."""


def next_run_after_failure(source: SourceInfo, now: datetime) -> datetime:
    """Exponential backoff from the poll interval, capped (failures counted before this one)."""
    exponent = min(source.consecutive_failures, 16)
    delay = min(BACKOFF_CAP_SECONDS, source.poll_interval * (2**exponent))
    return now + timedelta(seconds=delay)


def sync_source_once(store: MailStore, source: SourceInfo) -> None:
    """The `SYNC_ENGINES` entry for POP3: raises `SyncError` when the sync failed."""
    run_pop3_sync(store, source)


def run_pop3_sync(
    store: MailStore, source: SourceInfo, *, now: datetime | None = None
) -> SyncReport:
    """Lease the source, sync it, record success or failure, release the lease."""
    owner = lease_owner_id()
    _acquire(store, source, owner)
    try:
        return _sync_and_record(store, source, owner, now)
    finally:
        store.release_source_lease(source.id, owner=owner)


def _acquire(store: MailStore, source: SourceInfo, owner: str) -> None:
    now = datetime.now(UTC)
    if store.acquire_source_lease(source.id, owner=owner, ttl_seconds=LEASE_TTL_SECONDS, now=now):
        return
    holder, _expires = store.source_lease(source.id)
    if (
        holder is not None
        and owner_is_dead(holder)
        and store.take_over_source_lease(
            source.id, stale_owner=holder, owner=owner, ttl_seconds=LEASE_TTL_SECONDS, now=now
        )
    ):
        log.info("event=lease_taken_over source_id=%d reason=holder_gone", source.id)
        return
    raise SourceBusyError("throttled", "another gateway process is syncing this source")


def _sync_and_record(
    store: MailStore, source: SourceInfo, owner: str, now: datetime | None
) -> SyncReport:
    last_renewal = time.monotonic()

    def renew(_fetched: int, _bytes: int) -> None:
        nonlocal last_renewal
        if time.monotonic() - last_renewal < LEASE_TTL_SECONDS / 3:
            return
        last_renewal = time.monotonic()
        if not store.renew_source_lease(
            source.id, owner=owner, ttl_seconds=LEASE_TTL_SECONDS, now=datetime.now(UTC)
        ):
            raise SyncError("throttled", "lease lost to another gateway process")

    try:
        report = sync_pop3_source(store, source, now=now, on_progress=renew)
    except SyncError as error:
        finished = datetime.now(UTC)
        partial = error if isinstance(error, PartialSyncError) else None
        store.record_sync_failure(
            source.id,
            error_class=error.error_class,
            message=error.message,
            now=finished,
            next_run_at=next_run_after_failure(source, finished),
            fetched=partial.fetched if partial else 0,
            bytes=partial.bytes_stored if partial else 0,
        )
        log.warning(
            "event=sync_failed source_id=%d error_class=%s message=%r",
            source.id,
            error.error_class,
            error.message,
        )
        raise
    finished = datetime.now(UTC)
    store.record_sync_success(
        source.id,
        fetched=report.fetched,
        bytes=report.bytes,
        now=finished,
        next_run_at=finished + timedelta(seconds=source.poll_interval),
    )
    return report
