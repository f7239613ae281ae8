"""The shared login throttle: counts per address and user name, across processes (replicas)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth_throttle import AuthThrottle, LoginThrottlePolicy
from gateway.settings import Settings
from gateway.store import MailStore, open_store

POLICY = LoginThrottlePolicy(free_failures=2, max_delay_seconds=8, window_seconds=600)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def fail(throttle: AuthThrottle, address: str, user: str) -> float:
    wait = await throttle.check(address=address, username=user)
    if not wait:
        await throttle.record_failure(address=address, username=user)
    return wait


def test_failures_on_one_replica_slow_the_other(backend_settings: Settings) -> None:
    """Two stores on one database stand for two replicas (PostgreSQL in production)."""
    first, second = open_store(backend_settings), open_store(backend_settings)
    clock = Clock()
    one = AuthThrottle(first, POLICY, clock=clock)
    two = AuthThrottle(second, POLICY, clock=clock)

    async def scenario() -> None:
        assert await fail(one, "192.0.2.1", "alice") == 0
        assert await fail(two, "192.0.2.2", "alice") == 0
        # Third attempt: checked, but it claims the next slot for both replicas.
        assert await one.check(address="192.0.2.3", username="alice") == 0
        assert await two.check(address="192.0.2.4", username="Alice") == pytest.approx(1)
        await one.record_failure(address="192.0.2.3", username="alice")
        assert await two.check(address="192.0.2.5", username="alice") == pytest.approx(1)
        clock.advance(1.5)
        assert await fail(two, "192.0.2.5", "alice") == 0
        assert await one.check(address="192.0.2.6", username="alice") == pytest.approx(2)
        # Another user's success does not clear alice's failures ...
        await one.record_success(address="192.0.2.6", username="bob")
        assert await one.check(address="192.0.2.6", username="alice") == pytest.approx(2)
        # ... her own does, and the quiet window forgets an address's failures.
        await two.record_success(address="192.0.2.9", username="alice")
        assert await one.check(address="192.0.2.7", username="alice") == 0
        clock.advance(POLICY.window_seconds + 1)
        assert await one.check(address="192.0.2.5", username="carol") == 0

    try:
        asyncio.run(scenario())
    finally:
        first.close()
        second.close()


def test_delay_doubles_up_to_the_maximum() -> None:
    delays = [POLICY.delay_after(failures) for failures in range(1, 10)]
    assert delays == [0, 0, 1, 2, 4, 8, 8, 8, 8]
    assert LoginThrottlePolicy(free_failures=0).delay_after(10_000) == 60


def test_parallel_attempts_in_one_process_are_counted_one_by_one(store: MailStore) -> None:
    clock = Clock()
    throttle = AuthThrottle(store, POLICY, clock=clock)

    async def guess(number: int) -> float:
        async with throttle.attempt(address="198.51.100.1", username="alice", patience=0.5) as wait:
            if not wait:
                await throttle.record_failure(address="198.51.100.1", username="alice")
            return wait

    async def burst() -> list[float]:
        return await asyncio.gather(*(guess(n) for n in range(20)))

    waits = asyncio.run(burst())
    # Two free failures, a third checked claiming the next slot; the rest refused.
    assert sum(wait == 0 for wait in waits) == 3


def test_clean_logins_from_one_address_run_side_by_side_and_write_nothing(
    store: MailStore,
) -> None:
    """Fifty clients of one user on one address (imaptest, a busy office NAT) must not queue
    behind each other while nobody has failed: up to `free_failures` check at once, and a
    success from an address the user already trusts leaves the store untouched."""
    clock = Clock()
    policy = LoginThrottlePolicy(free_failures=4, max_delay_seconds=8, window_seconds=600)
    throttle = AuthThrottle(store, policy, clock=clock)
    address, user = "198.51.100.7", "alice"
    keys = ["address:" + address, "user:alice", f"trusted:alice|{address}"]

    async def log_in(together: asyncio.Barrier, timeout: float = 5) -> float:
        async with throttle.attempt(address=address, username=user, patience=5) as wait:
            # Serialised attempts would never all reach the barrier: it times out then.
            await asyncio.wait_for(together.wait(), timeout=timeout)
            await throttle.record_success(address=address, username=user)
            return wait

    async def scenario() -> None:
        assert await log_in(asyncio.Barrier(1)) == 0  # the first login marks the address trusted
        before = store.read_login_records(keys=keys)
        assert set(before) == {keys[2]}
        clock.advance(60)
        together = asyncio.Barrier(4)
        assert await asyncio.gather(*(log_in(together) for _ in range(4))) == [0.0] * 4
        # More clients than slots: they wait for a slot, not for a turn each.
        assert await asyncio.gather(*(log_in(asyncio.Barrier(1)) for _ in range(12))) == [0.0] * 12
        assert store.read_login_records(keys=keys) == before  # no clear, no trust rewrite

        # One failure on record: attempts take turns again, so four cannot meet.
        await throttle.record_failure(address=address, username="mallory")
        with pytest.raises(TimeoutError):
            await asyncio.gather(*(log_in(asyncio.Barrier(2), 0.5) for _ in range(2)))

    asyncio.run(scenario())


def test_a_burst_on_a_clean_address_gets_only_the_free_failures(store: MailStore) -> None:
    """Checks let through side by side while nothing has failed are bounded by the free
    failures, and attempts that take turns wait for their outcomes before reading the counts."""
    throttle = AuthThrottle(store, POLICY, clock=Clock())

    async def guess() -> float:
        async with throttle.attempt(address="203.0.113.9", username="bob", patience=0.5) as wait:
            if not wait:
                await asyncio.sleep(0.05)  # both free guesses are still being checked
                await throttle.record_failure(address="203.0.113.9", username="bob")
            return wait

    async def burst() -> list[float]:
        return await asyncio.gather(*(guess() for _ in range(20)))

    waits = asyncio.run(burst())
    assert sum(wait == 0 for wait in waits) == 3  # as when every attempt takes its turn
