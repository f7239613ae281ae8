"""Login throttling for the admin API, per client address and per user name.

The one place the admin asks "may this login be tried?" and reports its outcome, so the
protocol-agnostic, store-backed throttle can replace the in-memory IMAP one here alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.imap.limits import AuthThrottle


class LoginThrottle:
    """Each failure from an address, or against a user name, delays the next try from it
    exponentially after a few free ones (see AuthThrottle); a success clears both."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures = AuthThrottle()
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, *, address: str, user: str) -> int:
        """Seconds to wait before this login may be tried; 0: go ahead."""
        now = self._clock()
        wait = max(self._blocked_until.get(key, 0.0) - now for key in _keys(address, user))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *, address: str, user: str) -> None:
        now = self._clock()
        for key in _keys(address, user):
            delay = self._failures.delay_after_failure(key, now)
            if delay > 0:
                self._blocked_until[key] = now + delay

    def succeeded(self, *, address: str, user: str) -> None:
        for key in _keys(address, user):
            self._failures.forget(key)
            self._blocked_until.pop(key, None)


def _keys(address: str, user: str) -> tuple[str, str]:
    return f"address:{address}", f"user:{user.lower()}"
