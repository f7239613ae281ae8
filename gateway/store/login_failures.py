"""Failed logins per address and per user name, shared by every connection and replica.

The policy (how many failures are free, how long a key waits after more) is the caller's
(gateway/auth_throttle.py); these operations only read and change the counts atomically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.store.base import StoreBase
from gateway.store.models import LoginFailure


@dataclass(frozen=True)
class LoginThrottlePolicy:
    """Failures before a key is slowed, the longest wait, and when failures are forgotten."""

    free_failures: int = 5
    max_delay_seconds: float = 60.0
    window_seconds: float = 900.0

    def delay_after(self, failures: int) -> float:
        """Seconds a key waits after its `failures`-th failure: 1, 2, 4 … past the free ones."""
        excess = failures - self.free_failures
        if excess <= 0:
            return 0.0
        return min(2.0 ** min(excess - 1, 30), self.max_delay_seconds)

    def is_stale(self, row: LoginFailure | LoginRecord, now: datetime) -> bool:
        return now - row.last_failure_at > timedelta(seconds=self.window_seconds)


@dataclass(frozen=True)
class LoginRecord:
    """One row of the login table as read, detached from any session."""

    failures: int
    last_failure_at: datetime
    blocked_until: datetime | None


class LoginFailureOperations(StoreBase):
    def read_login_records(self, *, keys: Sequence[str]) -> dict[str, LoginRecord]:
        """The rows of `keys` that exist (failure counts and trust marks), in one read."""
        with self.database.read() as session:
            rows = session.exec(select(LoginFailure).where(col(LoginFailure.key).in_(keys)))
            return {
                row.key: LoginRecord(row.failures, row.last_failure_at, row.blocked_until)
                for row in rows.all()
            }

    def claim_login_attempt(
        self, *, keys: Sequence[str], now: datetime, policy: LoginThrottlePolicy
    ) -> float:
        """0.0 if a login on `keys` may be checked now, else the seconds until it may.

        A key past its free failures has its next slot taken by this attempt (as if it will
        fail; a success clears it), so parallel connections cannot check guesses together.
        """
        with self.database.read() as session:
            rows = self._live_rows(session, keys, now, policy)
        if not rows:
            return 0.0  # the common case: no write transaction for a clean login
        wait = _wait(rows, now)
        if wait > 0 or all(row.failures < policy.free_failures for row in rows):
            return wait
        with self.database.write() as session:
            rows = self._live_rows(session, keys, now, policy, lock=True)
            wait = _wait(rows, now)
            if wait > 0:
                return wait
            for row in rows:
                if row.failures >= policy.free_failures:
                    hold = policy.delay_after(row.failures + 1)
                    row.blocked_until = now + timedelta(seconds=hold)
                    session.add(row)
            return 0.0

    def record_login_failure(
        self, *, keys: Sequence[str], now: datetime, policy: LoginThrottlePolicy
    ) -> None:
        """Count one failure on each key and set when its next attempt may be checked."""
        for attempt in range(2):
            try:
                with self.database.write() as session:
                    self._count_failure(session, keys, now, policy)
                return
            except IntegrityError:
                # Two replicas inserted the same new key at once; the second pass updates it.
                if attempt:
                    raise

    def is_login_trusted(self, *, key: str, now: datetime) -> bool:
        """Whether `key` was marked by `trust_login` and the mark has not run out."""
        with self.database.read() as session:
            row = session.get(LoginFailure, key)
            return row is not None and row.blocked_until is not None and row.blocked_until > now

    def trust_login(self, *, key: str, now: datetime, until: datetime) -> None:
        """Mark `key` trusted until `until` (rewritten only when half the time is used up)."""
        with self.database.read() as session:
            row = session.get(LoginFailure, key)
            expires = row.blocked_until if row is not None else None
            if expires is not None and expires - now > (until - now) / 2:
                return
        # IntegrityError: another replica marked it meanwhile, which is as good.
        with contextlib.suppress(IntegrityError), self.database.write() as session:
            row = session.get(LoginFailure, key, with_for_update=True)
            if row is None:
                row = LoginFailure(key=key, failures=0, last_failure_at=now)
            row.last_failure_at = now
            row.blocked_until = until
            session.add(row)

    def clear_login_failures(self, *, keys: Sequence[str]) -> None:
        """Forget the failures of `keys` (a successful login of that user)."""
        with self.database.read() as session:
            if not session.exec(
                select(LoginFailure.key).where(col(LoginFailure.key).in_(keys))
            ).first():
                return
        with self.database.write() as session:
            session.execute(delete(LoginFailure).where(col(LoginFailure.key).in_(keys)))

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _live_rows(
        session: Session,
        keys: Sequence[str],
        now: datetime,
        policy: LoginThrottlePolicy,
        *,
        lock: bool = False,
    ) -> list[LoginFailure]:
        query = select(LoginFailure).where(col(LoginFailure.key).in_(keys))
        if lock:
            query = query.with_for_update()
        return [row for row in session.exec(query).all() if not policy.is_stale(row, now)]

    @staticmethod
    def _count_failure(
        session: Session, keys: Sequence[str], now: datetime, policy: LoginThrottlePolicy
    ) -> None:
        cutoff = now - timedelta(seconds=policy.window_seconds)
        # Forgotten keys go, so guessing with many user names leaves no lasting rows.
        session.execute(
            delete(LoginFailure).where(
                col(LoginFailure.last_failure_at) < cutoff,
                or_(
                    col(LoginFailure.blocked_until).is_(None),
                    col(LoginFailure.blocked_until) < now,
                ),
                col(LoginFailure.key).not_in(keys),
            )
        )
        existing = {
            row.key: row
            for row in session.exec(
                select(LoginFailure).where(col(LoginFailure.key).in_(keys)).with_for_update()
            ).all()
        }
        for key in keys:
            row = existing.get(key)
            if row is None:
                row = LoginFailure(key=key, failures=0, last_failure_at=now)
            elif policy.is_stale(row, now):
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            delay = policy.delay_after(row.failures)
            row.blocked_until = now + timedelta(seconds=delay) if delay else None
            session.add(row)


def _wait(rows: Sequence[LoginFailure], now: datetime) -> float:
    waits = [
        (row.blocked_until - now).total_seconds()
        for row in rows
        if row.blocked_until is not None and row.blocked_until > now
    ]
    return max(waits, default=0.0)
