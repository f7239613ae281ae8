"""Failed-AUTH throttling for submission, per client address and per login name.

The one place that names the throttle implementation: the IMAP server's in-process
`AuthThrottle` until the protocol-agnostic, store-backed throttle lands; switching is a
change to `SubmissionAuthGuard.__init__` only.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.imap.limits import AuthThrottle

log = logging.getLogger("gateway.smtp")


class SubmissionAuthGuard:
    """Delays the answer to a failed AUTH the more failures an address or a user has had."""

    def __init__(self) -> None:
        self._by_address = AuthThrottle()
        self._by_user = AuthThrottle()

    async def failed(self, *, peer: str, login: str) -> None:
        """Record a failure and wait out its penalty before the client hears of it."""
        delay = max(
            self._by_address.delay_after_failure(peer),
            self._by_user.delay_after_failure(login.lower()),
        )
        log.warning("event=auth_failed service=submission peer=%s delay=%.1f", peer, delay)
        if delay:
            await asyncio.sleep(delay)

    def succeeded(self, *, peer: str) -> None:
        # Per user failures stay: a guesser who also knows one password must not reset them.
        self._by_address.forget(peer)
