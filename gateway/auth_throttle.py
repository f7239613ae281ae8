"""Login throttling for every protocol: IMAP LOGIN/AUTHENTICATE, SMTP AUTH, the admin login.

Failures are counted per client address and per target user name, in the store, so the
throttle holds across connections and across replicas sharing one PostgreSQL. A key past its
free failures waits 1, 2, 4 … seconds (up to a maximum) before its next attempt is even
checked; an attempt during the wait is refused without looking at the password, so a hundred
parallel connections guess no faster than one. Only the user's own successful login clears
the user name's count; an address's count is forgotten after a quiet window, never by a
success (one account of their own must not let someone guess another's password freely).
An address the user logged in from lately is spared the user name's slow-down (its own
address count still applies), so a stranger's guessing does not lock the user out.

Use, around the password check of any protocol::

    async with throttle.attempt(address=peer, username=name, patience=20) as wait:
        if wait:
            refuse ("too many failed logins, try again in {ceil(wait)} s")
        elif password is right:
            await throttle.record_success(address=peer, username=name)
        else:
            await throttle.record_failure(address=peer, username=name)

Within one process `attempt` lets one check per address and per user name run at a time once
either has failures on record, so a burst of parallel guesses is counted one by one; replicas
share the counts in the store. While neither has any, up to `free_failures` checks run side by
side (a burst that all fails uses only the free failures), and a success from an address the
user already trusts writes nothing: fifty clients of one user on one address log in in parallel.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from gateway.settings import Settings
from gateway.store.login_failures import LoginFailureOperations, LoginRecord, LoginThrottlePolicy

__all__ = ["AuthThrottle", "LoginThrottlePolicy", "policy_from_settings"]

T = TypeVar("T")
# Longer names are cut: the key column holds 320 characters.
_MAX_KEY_TEXT = 150
# How long an address the user logged in from is spared the user name's slow-down.
TRUSTED_ADDRESS_DAYS = 30
_TRUST = timedelta(days=TRUSTED_ADDRESS_DAYS)

# Set by an unserialised `attempt` that found nothing for `record_success` to write: the
# (address, user name) it checked. A context variable, as the caller's block runs in its task.
_clean_attempt: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "clean_login_attempt", default=None
)


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
        self._turns = _KeyLocks()

    @asynccontextmanager
    async def attempt(
        self, *, address: str, username: str, patience: float
    ) -> AsyncIterator[float]:
        """This process's turn for `address` and `username` while one password is checked.

        Yields 0.0 once the password may be checked (record the outcome inside the block),
        or the seconds still to wait if that is longer than `patience` (refuse then).
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + patience
        both = _keys(address, username)
        if await self._turns.start_unserialised(
            both, limit=self.policy.free_failures, timeout=patience
        ):
            try:
                clean = await self._clean_standing(address, username)
                if clean is not None:
                    token = _clean_attempt.set((address, username) if clean else None)
                    try:
                        yield 0.0
                    finally:
                        _clean_attempt.reset(token)
                    return
            finally:
                self._turns.finish_unserialised(both)
        keys = await self._throttled_keys(address, username)
        remaining = max(0.0, give_up_at - loop.time())
        async with self._turns.holding(keys, timeout=remaining) as held:
            if not held:
                yield max(patience, 1.0)  # others hold the turn past our patience
                return
            yield await self._wait_for_slot(keys, give_up_at)

    async def _clean_standing(self, address: str, username: str) -> bool | None:
        """None if the address or (untrusted) user name has failures on record: take turns then.

        Otherwise whether a success would write nothing: the user name has no row to clear
        and the address's trust has over half its time to run (`trust_login` skips it then).
        """
        address_key, user_key = _keys(address, username)
        trusted_key = _trusted_key(address, username)
        records = await self._run(
            lambda: self.store.read_login_records(keys=[address_key, user_key, trusted_key])
        )
        assert isinstance(records, dict)  # noqa: S101
        now = self._clock()
        trust = records.get(trusted_key)
        trusted_until = trust.blocked_until if trust is not None else None
        throttled = (
            [address_key] if trusted_until and trusted_until > now else [address_key, user_key]
        )
        if any(_counts(records.get(key), now, self.policy) for key in throttled):
            return None
        return (
            user_key not in records
            and trusted_until is not None
            and trusted_until - now > _TRUST / 2
        )

    async def check(self, *, address: str, username: str) -> float:
        """0.0: verify the password now. Otherwise refuse this attempt; the value is the
        seconds until the address or user name may try again (for the refusal's text)."""
        return await self._claim(await self._throttled_keys(address, username))

    async def wait_turn(self, *, address: str, username: str, patience: float) -> float:
        """Wait (up to `patience` seconds) until an attempt may be checked: 0.0 then.

        Otherwise the attempt is refused and the value is the wait still ahead. Parallel
        waiters are let through one slot at a time, as each check claims its slot.
        """
        loop = asyncio.get_running_loop()
        keys = await self._throttled_keys(address, username)
        return await self._wait_for_slot(keys, loop.time() + patience)

    async def _throttled_keys(self, address: str, username: str) -> list[str]:
        """The keys that slow this attempt: the address, and the user name unless the user
        logged in from this address lately (guesses elsewhere do not lock them out here)."""
        keys = _keys(address, username)
        trusted, now = _trusted_key(address, username), self._clock()
        if await self._run(lambda: self.store.is_login_trusted(key=trusted, now=now)):
            return keys[:1]
        return keys

    async def _claim(self, keys: list[str]) -> float:
        now = self._clock()
        wait = await self._run(
            lambda: self.store.claim_login_attempt(keys=keys, now=now, policy=self.policy)
        )
        assert isinstance(wait, float)  # noqa: S101
        return wait

    async def _wait_for_slot(self, keys: list[str], give_up_at: float) -> float:
        loop = asyncio.get_running_loop()
        while (wait := await self._claim(keys)) > 0:
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
        """The user logged in: their name's failures are forgotten, the address's are not,
        and the address is trusted for this user for TRUSTED_ADDRESS_DAYS."""
        if _clean_attempt.get() == (address, username):
            return  # this attempt's read found no failures to clear and a fresh trust mark
        keys = [_user_key(username)]
        trusted = _trusted_key(address, username)
        now = self._clock()
        until = now + _TRUST

        def record() -> None:
            self.store.clear_login_failures(keys=keys)
            self.store.trust_login(key=trusted, now=now, until=until)

        await self._run(record)


def _counts(record: LoginRecord | None, now: datetime, policy: LoginThrottlePolicy) -> bool:
    """Whether `record` holds failures that still count (or a wait still running)."""
    if record is None:
        return False
    waiting = record.blocked_until is not None and record.blocked_until > now
    return waiting or (record.failures > 0 and not policy.is_stale(record, now))


def _user_key(username: str) -> str:
    return "user:" + username.strip().casefold()[:_MAX_KEY_TEXT]


def _trusted_key(address: str, username: str) -> str:
    return "trusted:" + _user_key(username)[5:] + "|" + address[:_MAX_KEY_TEXT]


def _keys(address: str, username: str) -> list[str]:
    return ["address:" + address[:_MAX_KEY_TEXT], _user_key(username)]


@dataclass
class _Turn:
    """One key's turn-taking: the lock of serialised checks, and the unserialised ones running."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: int = 0  # serialised attempts holding or waiting for the lock
    running: int = 0  # unserialised checks under way
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class _KeyLocks:
    """Per key, created on demand and dropped when unused: a lock for attempts that take turns,
    and a count of attempts let through side by side while the key had no failures."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}
        # Set (and replaced) whenever an unserialised check ends: wakes those waiting for one.
        self._released = asyncio.Event()

    async def start_unserialised(self, keys: list[str], *, limit: int, timeout: float) -> bool:
        """Count one more check running on `keys` without a turn, waiting (up to `timeout`)
        while `limit` already run. False, with nothing counted, once an attempt takes turns
        on a key (or at the timeout): the caller takes turns then."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + timeout
        while limit > 0:
            turns = [self._turns.get(key) for key in keys]
            if any(turn is not None and turn.queued for turn in turns):
                return False
            if all(turn is None or turn.running < limit for turn in turns):
                for key in keys:
                    turn = self._turns.setdefault(key, _Turn())
                    turn.running += 1
                    turn.idle.clear()
                return True
            released = self._released
            try:
                async with asyncio.timeout(give_up_at - loop.time()):
                    await released.wait()
            except TimeoutError:
                return False
        return False

    def finish_unserialised(self, keys: list[str]) -> None:
        self._released.set()
        self._released = asyncio.Event()
        for key in keys:
            turn = self._turns[key]
            turn.running -= 1
            if not turn.running:
                turn.idle.set()
                if not turn.queued:
                    del self._turns[key]

    @asynccontextmanager
    async def holding(self, keys: list[str], *, timeout: float) -> AsyncIterator[bool]:
        """Hold every lock of `keys` (taken in sorted order: no deadlock), once the checks
        running without a turn have recorded their outcome; False on timeout."""
        ordered = sorted(set(keys))
        for key in ordered:
            self._turns.setdefault(key, _Turn()).queued += 1
        acquired: list[asyncio.Lock] = []
        try:
            try:
                async with asyncio.timeout(timeout):
                    for key in ordered:
                        turn = self._turns[key]
                        await turn.lock.acquire()
                        acquired.append(turn.lock)
                    # New unserialised checks stop while we queue; wait out those under way,
                    # so the failure counts we read next include theirs.
                    for key in ordered:
                        turn = self._turns[key]
                        if turn.running:
                            await turn.idle.wait()
            except TimeoutError:
                yield False
                return
            yield True
        finally:
            for lock in acquired:
                lock.release()
            for key in ordered:
                turn = self._turns[key]
                turn.queued -= 1
                if not turn.queued and not turn.running:
                    del self._turns[key]
