"""Run one source's sync under a lease, and record the outcome for the admin panel.

`sync_source_once` is what `gateway sync` and the scheduler call per source; the protocol's
engine (POP3 or IMAP) is chosen here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.fetch.budget import BudgetExhaustedError
from gateway.fetch.errors import SyncError, ThrottledError
from gateway.fetch.imap_reuse import ImapConnectionCache
from gateway.fetch.imap_source import sync_imap_source
from gateway.fetch.lease_heartbeat import LeaseHeartbeat, LeaseTiming
from gateway.fetch.leases import lease_owner_id, owner_is_dead
from gateway.fetch.pop3 import PartialSyncError, sync_pop3_source
from gateway.store import MailStore, SourceInfo
from gateway.store.views import AUTH_ATTEMPTS_BEFORE_STOP

log = logging.getLogger("gateway.fetch")

# A lease is renewed by a heartbeat while the sync runs (gateway/fetch/lease_heartbeat.py), so
# it can be short: a replica on another host takes a dead holder's sources after this long.
LEASE_TIMING = LeaseTiming()
LEASE_TTL_SECONDS = LEASE_TIMING.ttl_seconds
BACKOFF_CAP_SECONDS = 3600.0
# A refused login is retried far more slowly than a network failure: providers lock accounts
# that keep trying a wrong password. After AUTH_ATTEMPTS_BEFORE_STOP refusals in a row the
# source stops (`SourceInfo.credentials_rejected`) until its password is changed.
AUTH_BACKOFF_SECONDS = 15 * 60.0
# What a never-synced source is assumed to bring when deciding to start the workers ahead.
FIRST_SYNC_MESSAGES = 1000


class SourceBusyError(SyncError):
    """Another live process holds the source's lease; nothing was attempted."""


class SyncOutcome(Protocol):
    """What every engine's report says, for the source's counters."""

    @property
    def fetched(self) -> int: ...

    @property
    def bytes(self) -> int: ...

    @property
    def adopted(self) -> int: ...

    @property
    def adopted_bytes(self) -> int: ...


def next_run_after_failure(
    source: SourceInfo, now: datetime, error: SyncError | None = None
) -> datetime:
    """Exponential backoff from the poll interval, capped (failures counted before this one);
    a server's own suggested wait, or the end of a spent daily budget, when longer."""
    exponent = min(source.consecutive_failures, 16)
    delay = min(BACKOFF_CAP_SECONDS, source.poll_interval * (2**exponent))
    if error is not None and error.error_class == "auth":
        delay = max(delay, AUTH_BACKOFF_SECONDS * (2**exponent))
    backoff = now + timedelta(seconds=delay)
    if isinstance(error, BudgetExhaustedError):
        return max(backoff, error.resume_at)
    if isinstance(error, ThrottledError) and error.retry_after is not None:
        return max(backoff, now + timedelta(seconds=error.retry_after))
    return backoff


def sync_source_once(
    store: MailStore, source: SourceInfo, *, connections: ImapConnectionCache | None = None
) -> None:
    """Sync one source by its protocol; raises `SyncError` when the sync failed."""
    run_source_sync(store, source, connections=connections)


def run_source_sync(
    store: MailStore,
    source: SourceInfo,
    *,
    now: datetime | None = None,
    connections: ImapConnectionCache | None = None,
    lease: LeaseTiming = LEASE_TIMING,
) -> SyncOutcome:
    """Lease the source, sync it, record success or failure, release the lease.

    `connections`: where IMAP syncs keep their logged-in connection for the next one.
    """
    if source.protocol not in ("pop3", "imap"):
        raise SyncError("protocol", f"no sync engine for protocol {source.protocol!r}")
    owner = lease_owner_id()
    _acquire(store, source, owner, lease)
    # Logged after the lease is ours and before it is given back, so that each logged span
    # lies within the lease: spans of different processes never overlap (tests/system/
    # test_replicas.py checks exactly that).
    log.info("event=lease_acquired source_id=%d owner=%s", source.id, owner)
    try:
        with LeaseHeartbeat(store, source_id=source.id, owner=owner, timing=lease) as heartbeat:
            return _sync_and_record(store, source, heartbeat, now, connections)
    finally:
        log.info("event=lease_releasing source_id=%d owner=%s", source.id, owner)
        store.release_source_lease(source.id, owner=owner)


def _acquire(store: MailStore, source: SourceInfo, owner: str, lease: LeaseTiming) -> None:
    now = datetime.now(UTC)
    if store.acquire_source_lease(source.id, owner=owner, ttl_seconds=lease.ttl_seconds, now=now):
        return
    holder, _expires = store.source_lease(source.id)
    if (
        holder is not None
        and owner_is_dead(holder)
        and store.take_over_source_lease(
            source.id, stale_owner=holder, owner=owner, ttl_seconds=lease.ttl_seconds, now=now
        )
    ):
        log.info(
            "event=lease_taken_over source=%s source_id=%d reason=holder_gone",
            source.label,
            source.id,
        )
        return
    raise SourceBusyError("throttled", "another gateway process is syncing this source")


def _sync_and_record(
    store: MailStore,
    source: SourceInfo,
    heartbeat: LeaseHeartbeat,
    now: datetime | None,
    connections: ImapConnectionCache | None,
) -> SyncOutcome:
    started = datetime.now(UTC)
    if source.last_success_at is None:
        # A first sync usually downloads a whole mailbox: the analysis workers start while
        # we log in and list, not after (they are started in the background).
        store.warm_ingest_workers(FIRST_SYNC_MESSAGES)

    def stop_if_lease_lost(_fetched: int, _bytes: int) -> None:
        # The heartbeat renews; a sync whose lease another process took stops at its next step.
        heartbeat.check()

    try:
        report: SyncOutcome
        if source.protocol == "imap":
            report = sync_imap_source(
                store, source, now=now, on_progress=stop_if_lease_lost, connections=connections
            )
        else:
            report = sync_pop3_source(store, source, now=now, on_progress=stop_if_lease_lost)
    except SyncError as error:
        finished = datetime.now(UTC)
        partial = error if isinstance(error, PartialSyncError) else None
        store.record_sync_failure(
            source.id,
            error_class=error.error_class,
            message=error.message,
            now=finished,
            next_run_at=next_run_after_failure(source, finished, error),
            fetched=partial.fetched if partial else 0,
            bytes=partial.bytes_stored if partial else 0,
            started_at=started,
        )
        log.warning(
            "event=sync_failed source=%s source_id=%d error_class=%s message=%r",
            source.label,
            source.id,
            error.error_class,
            error.message,
        )
        if (
            error.error_class == "auth"
            and source.consecutive_failures + 1 >= AUTH_ATTEMPTS_BEFORE_STOP
        ):
            log.warning(
                "event=source_credentials_rejected source=%s source_id=%d attempts=%d "
                "action=stopped_until_password_changes",
                source.label,
                source.id,
                source.consecutive_failures + 1,
            )
        raise
    finished = datetime.now(UTC)
    # Messages the user already had through another account count as this source's too:
    # `source list` must not show 0 messages for an account that holds them.
    store.record_sync_success(
        source.id,
        fetched=report.fetched + report.adopted,
        bytes=report.bytes + report.adopted_bytes,
        now=finished,
        next_run_at=finished + timedelta(seconds=source.poll_interval),
        started_at=started,
    )
    return report
