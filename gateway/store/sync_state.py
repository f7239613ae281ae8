"""Sync state of sources (for the admin panel and the scheduler) and cross-process leases.

Leases are one conditional UPDATE whose row count says who won: correct on PostgreSQL (row
lock, READ COMMITTED re-check of the WHERE clause) and on SQLite (writers serialise), so two
gateway processes never sync one source at once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, or_, update
from sqlmodel import col, select

from gateway.store.base import StoreBase, SyncListener, log
from gateway.store.errors import NotFoundError
from gateway.store.models import Origin, Source, SyncRun
from gateway.store.views import SyncRunInfo

_MAX_ERROR_TEXT = 500
SYNC_RUN_RETENTION = timedelta(days=2)


class SyncStateOperations(StoreBase):
    def record_sync_success(
        self,
        source_id: int,
        *,
        fetched: int,
        bytes: int,
        now: datetime,
        next_run_at: datetime | None,
        started_at: datetime | None = None,
    ) -> None:
        """A sync finished: clear the error, reset the failure count, add to the counters.

        With `started_at`, the run is also kept for the panel's chart and told to the sync
        listeners (metrics).
        """
        self._update_source(
            source_id,
            last_attempt_at=now,
            last_success_at=now,
            last_error=None,
            last_error_class=None,
            consecutive_failures=0,
            next_run_at=next_run_at,
            messages_fetched=col(Source.messages_fetched) + fetched,
            bytes_fetched=col(Source.bytes_fetched) + bytes,
        )
        self._note_sync_run(source_id, started_at, now, fetched, bytes, None)

    def record_sync_failure(
        self,
        source_id: int,
        *,
        error_class: str,
        message: str,
        now: datetime,
        next_run_at: datetime | None,
        fetched: int = 0,
        bytes: int = 0,
        started_at: datetime | None = None,
    ) -> None:
        """A sync failed: keep its class and short message, count consecutive failures.

        `fetched`/`bytes` count what was stored before the failure (it stays stored).
        """
        self._update_source(
            source_id,
            last_attempt_at=now,
            last_error=printable_text(message, _MAX_ERROR_TEXT),
            last_error_class=error_class,
            consecutive_failures=col(Source.consecutive_failures) + 1,
            next_run_at=next_run_at,
            messages_fetched=col(Source.messages_fetched) + fetched,
            bytes_fetched=col(Source.bytes_fetched) + bytes,
        )
        self._note_sync_run(source_id, started_at, now, fetched, bytes, error_class)

    def add_sync_listener(self, listener: SyncListener) -> None:
        """Register a callback told of every finished sync that was timed (metrics)."""
        self._sync_listeners.append(listener)

    def remove_sync_listener(self, listener: SyncListener) -> None:
        self._sync_listeners.remove(listener)

    def _note_sync_run(
        self,
        source_id: int,
        started_at: datetime | None,
        finished_at: datetime,
        fetched: int,
        bytes: int,
        error_class: str | None,
    ) -> None:
        if started_at is None:
            return
        run = SyncRunInfo(
            source_id=source_id,
            finished_at=finished_at,
            seconds=max(0.0, (finished_at - started_at).total_seconds()),
            fetched=fetched,
            bytes=bytes,
            error_class=error_class,
        )
        with self.database.write() as session:
            session.add(
                SyncRun(
                    source_id=source_id,
                    finished_at=finished_at,
                    seconds=run.seconds,
                    fetched=fetched,
                    bytes=bytes,
                    error_class=error_class,
                )
            )
            # Runs older than this are pruned as new ones arrive; the chart shows the last day.
            session.execute(
                delete(SyncRun).where(
                    col(SyncRun.source_id) == source_id,
                    col(SyncRun.finished_at) < finished_at - SYNC_RUN_RETENTION,
                )
            )
        for listener in list(self._sync_listeners):
            try:
                listener(run)
            except Exception:
                log.exception("event=sync_listener_failed source_id=%d", source_id)

    def acquire_source_lease(
        self, source_id: int, *, owner: str, ttl_seconds: float, now: datetime
    ) -> bool:
        """Take the source for `ttl_seconds` if it is free, expired or already ours."""
        expires = now + timedelta(seconds=ttl_seconds)
        with self.database.write() as session:
            result = session.execute(
                update(Source)
                .where(
                    col(Source.id) == source_id,
                    or_(
                        col(Source.lease_owner).is_(None),
                        col(Source.lease_owner) == owner,
                        col(Source.lease_expires_at) < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires_at=expires)
            )
            return _rowcount(result) == 1

    def take_over_source_lease(
        self, source_id: int, *, stale_owner: str, owner: str, ttl_seconds: float, now: datetime
    ) -> bool:
        """Take a lease from an owner known to be dead (its process is gone), if still its."""
        with self.database.write() as session:
            result = session.execute(
                update(Source)
                .where(col(Source.id) == source_id, col(Source.lease_owner) == stale_owner)
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=ttl_seconds))
            )
            return _rowcount(result) == 1

    def renew_source_lease(
        self, source_id: int, *, owner: str, ttl_seconds: float, now: datetime
    ) -> bool:
        """Extend our lease; False if it was lost (expired and taken by someone else)."""
        with self.database.write() as session:
            result = session.execute(
                update(Source)
                .where(col(Source.id) == source_id, col(Source.lease_owner) == owner)
                .values(lease_expires_at=now + timedelta(seconds=ttl_seconds))
            )
            return _rowcount(result) == 1

    def release_source_lease(self, source_id: int, *, owner: str) -> bool:
        """Give the source back; only the owner can. False if it was not ours any more."""
        with self.database.write() as session:
            result = session.execute(
                update(Source)
                .where(col(Source.id) == source_id, col(Source.lease_owner) == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
            return _rowcount(result) == 1

    def source_lease(self, source_id: int) -> tuple[str | None, datetime | None]:
        """(owner, expiry) of a source's lease, for diagnostics and dead-owner takeover."""
        with self.database.read() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            return source.lease_owner, source.lease_expires_at

    def read_sync_state(self, source_id: int) -> dict[str, Any]:
        """Small engine-owned state of a source (e.g. today's downloaded bytes)."""
        with self.database.read() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source: {source_id}")
            value = json.loads(source.sync_state_json or "{}")
            return value if isinstance(value, dict) else {}

    def write_sync_state(self, source_id: int, state: dict[str, Any]) -> None:
        self._update_source(source_id, sync_state_json=json.dumps(state, sort_keys=True))

    def origin_first_seen(self, *, source_id: int) -> dict[str, datetime]:
        """UIDL → when it was first stored, for a POP3 source's delete-after-N-days policy."""
        with self.database.read() as session:
            rows = session.exec(
                select(Origin.uidl, Origin.fetched_at).where(
                    Origin.source_id == source_id, col(Origin.uidl).is_not(None)
                )
            )
            return {uidl: fetched_at for uidl, fetched_at in rows if uidl is not None}

    def _update_source(self, source_id: int, **values: object) -> None:
        with self.database.write() as session:
            result = session.execute(
                update(Source).where(col(Source.id) == source_id).values(**values)
            )
            if _rowcount(result) != 1:
                raise NotFoundError(f"no such source id: {source_id}")


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def printable_text(text: str, limit: int) -> str:
    """`text` without control characters (a remote server's words end up in the message,
    the admin panel and logs show it), cut to `limit` characters."""
    return "".join(char if char.isprintable() else "?" for char in text[:limit])
