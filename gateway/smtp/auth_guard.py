"""SMTP AUTH behind the shared login throttle (`gateway/auth_throttle.py`).

Failures count per client address and per user name, in the store, like IMAP logins; during
a wait the password is not even checked. The one place the submission server meets the
throttle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.auth_throttle import AuthThrottle
from gateway.store import UserInfo

log = logging.getLogger("gateway.smtp")

# How long an AUTH waits for its turn before it is refused (as IMAP LOGIN does).
PATIENCE_SECONDS = 20.0


@dataclass(frozen=True)
class GuardedLogin:
    """The user when the password was right; `wait` > 0 when the throttle refused the
    attempt without checking it (seconds until the next may be checked)."""

    user: UserInfo | None
    wait: float = 0.0


class SubmissionAuthGuard:
    def __init__(self, throttle: AuthThrottle) -> None:
        self._throttle = throttle

    async def log_in(
        self, *, peer: str, name: str, check: Callable[[], Awaitable[UserInfo | None]]
    ) -> GuardedLogin:
        """Run `check` (the password verification) when the throttle lets this attempt
        through, and record its outcome."""
        async with self._throttle.attempt(
            address=peer, username=name, patience=PATIENCE_SECONDS
        ) as wait:
            if wait:
                log.warning(
                    "event=auth_throttled service=submission peer=%s user=%s wait=%.0f",
                    peer,
                    name[:64],
                    wait,
                )
                return GuardedLogin(None, wait)
            user = await check()
            if user is None:
                await self._throttle.record_failure(address=peer, username=name)
                log.warning("event=auth_failed service=submission peer=%s user=%s", peer, name[:64])
                return GuardedLogin(None)
            await self._throttle.record_success(address=peer, username=name)
            return GuardedLogin(user)
