"""Abuse limits: failed logins per address (throttled), connections per address and user."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

FAILURE_WINDOW_SECONDS = 900.0
FREE_FAILURES = 3
MAX_DELAY_SECONDS = 16.0


@dataclass
class AuthThrottle:
    """Exponential delay on failed logins from one address: slows guessing, not typos."""

    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures[address]
        while failures and now - failures[0] > FAILURE_WINDOW_SECONDS:
            failures.popleft()
        return failures

    def delay_after_failure(self, address: str, now: float | None = None) -> float:
        """Record a failure; the seconds to wait before answering it."""
        now = time.monotonic() if now is None else now
        failures = self._recent(address, now)
        failures.append(now)
        excess = len(failures) - FREE_FAILURES
        return 0.0 if excess <= 0 else min(2.0 ** (excess - 1), MAX_DELAY_SECONDS)

    def forget(self, address: str) -> None:
        self._failures.pop(address, None)


@dataclass
class ConnectionLimits:
    """Counts open connections per address and logged-in sessions per user."""

    per_address: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_user: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def open_connection(self, address: str, limit: int) -> bool:
        if self.per_address[address] >= limit:
            return False
        self.per_address[address] += 1
        return True

    def close_connection(self, address: str) -> None:
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def open_session(self, user_id: int, limit: int) -> bool:
        if self.per_user[user_id] >= limit:
            return False
        self.per_user[user_id] += 1
        return True

    def close_session(self, user_id: int) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]
