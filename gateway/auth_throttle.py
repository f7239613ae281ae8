"""Login throttling for every protocol: IMAP LOGIN/AUTHENTICATE, SMTP AUTH, the admin login.

Failures are counted per client address and per target user name, in the store, so the
throttle holds across connections and across replicas sharing one PostgreSQL. A key past its
free failures waits 1, 2, 4 … seconds (up to a maximum) before its next attempt is even
checked; an attempt during the wait is refused without looking at the password, so a hundred
parallel connections guess no faster than one. Only the user's own successful login clears
the user name's count; an address's count is forgotten after a quiet window, never by a
success (one account of their own must not let someone guess another's password freely).

Use, around the password check of any protocol::

    wait = await throttle.wait_turn(address=peer, username=name, patience=20)
    if wait:
        refuse ("too many failed logins, try again in {ceil(wait)} s")
    elif password is right:
        await throttle.record_success(address=peer, username=name)
    else:
        await throttle.record_failure(address=peer, username=name)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from gateway.settings import Settings
from gateway.store.login_failures import LoginFailureOperations, LoginThrottlePolicy

__all__ = ["AuthThrottle", "LoginThrottlePolicy", "policy_from_settings"]

T = TypeVar("T")
# Longer names are cut: the key column holds 320 characters.
_MAX_KEY_TEXT = 300


def policy_from_settings(settings: Settings) -> LoginThrottlePolicy:
    return LoginThrottlePolicy(
        free_failures=settings.auth_free_failures,
        max_delay_seconds=settings.auth_max_delay_seconds,
        window_seconds=settings.auth_failure_window_seconds,
    )


async def _to_thread(function: Callable[[], T]) -> T:
    return await asyncio.to_thread(function)


class AuthThrottle:
    """Shared failed-login accounting; `run_blocking` runs store calls off the event loop."""

    def __init__(
        self,
        store: LoginFailureOperations,
        policy: LoginThrottlePolicy,
        *,
        run_blocking: Callable[[Callable[[], object]], Awaitable[object]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy
        self._run = run_blocking or _to_thread
        self._clock = clock

    async def check(self, *, address: str, username: str) -> float:
        """0.0: verify the password now. Otherwise refuse this attempt; the value is the
        seconds until the address or user name may try again (for the refusal's text)."""
        keys = _keys(address, username)
        now = self._clock()
        wait = await self._run(
            lambda: self.store.claim_login_attempt(keys=keys, now=now, policy=self.policy)
        )
        assert isinstance(wait, float)  # noqa: S101
        return wait

    async def wait_turn(self, *, address: str, username: str, patience: float) -> float:
        """Wait (up to `patience` seconds) until an attempt may be checked: 0.0 then.

        Otherwise the attempt is refused and the value is the wait still ahead. Parallel
        waiters are let through one slot at a time, as `check` claims each slot.
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + patience
        while (wait := await self.check(address=address, username=username)) > 0:
            if loop.time() + wait > give_up_at:
                return wait
            await asyncio.sleep(wait)
        return 0.0

    async def record_failure(self, *, address: str, username: str) -> None:
        """The password (or user name) was wrong."""
        keys = _keys(address, username)
        now = self._clock()
        await self._run(
            lambda: self.store.record_login_failure(keys=keys, now=now, policy=self.policy)
        )

    async def record_success(self, *, address: str, username: str) -> None:
        """The user logged in: their name's failures are forgotten, the address's are not."""
        del address
        keys = [_user_key(username)]
        await self._run(lambda: self.store.clear_login_failures(keys=keys))


def _user_key(username: str) -> str:
    return "user:" + username.strip().casefold()[:_MAX_KEY_TEXT]


def _keys(address: str, username: str) -> list[str]:
    return ["address:" + address[:_MAX_KEY_TEXT], _user_key(username)]
