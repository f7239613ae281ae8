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
