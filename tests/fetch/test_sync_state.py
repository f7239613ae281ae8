"""Sync state and leases in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from gateway.store import MailStore


def _source(store: MailStore) -> int:
    user = store.create_user(name="alice", password="pw")
    return store.add_source(
        user_id=user.id,
        name="isp",
        protocol="pop3",
        host="h",
        port=995,
        security="tls",
        username="u",
        secret="s",
    ).id


def test_success_and_failure_are_recorded(store: MailStore) -> None:
    source_id = _source(store)
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    for attempt in range(2):
        store.record_sync_failure(
            source_id,
            error_class="auth",
            message="login rejected",
            now=now,
            next_run_at=now + timedelta(minutes=attempt + 1),
            fetched=3,
            bytes=300,
        )
    failing = store.get_source(user_name="alice", name="isp")
    assert (failing.last_error_class, failing.last_error) == ("auth", "login rejected")
    assert failing.consecutive_failures == 2 and failing.last_success_at is None
    assert failing.last_attempt_at == now and failing.next_run_at == now + timedelta(minutes=2)
    assert (failing.messages_fetched, failing.bytes_fetched) == (6, 600)
    later = now + timedelta(hours=1)
    store.record_sync_success(
        source_id, fetched=10, bytes=1000, now=later, next_run_at=later + timedelta(seconds=60)
    )
    ok = store.get_source(user_name="alice", name="isp")
    assert ok.last_error is None and ok.last_error_class is None and ok.consecutive_failures == 0
    assert ok.last_success_at == later and ok.last_attempt_at == later
    assert (ok.messages_fetched, ok.bytes_fetched) == (16, 1600)


def test_lease_is_exclusive_until_released_or_expired(store: MailStore) -> None:
    source_id = _source(store)
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert store.acquire_source_lease(source_id, owner="a", ttl_seconds=60, now=now)
    assert not store.acquire_source_lease(source_id, owner="b", ttl_seconds=60, now=now)
    assert store.acquire_source_lease(source_id, owner="a", ttl_seconds=60, now=now)  # re-entrant
    assert store.renew_source_lease(source_id, owner="a", ttl_seconds=60, now=now)
    assert not store.renew_source_lease(source_id, owner="b", ttl_seconds=60, now=now)
    assert not store.release_source_lease(source_id, owner="b")
    assert store.release_source_lease(source_id, owner="a")
    assert store.acquire_source_lease(source_id, owner="b", ttl_seconds=60, now=now)
    expired = now + timedelta(seconds=61)
    assert store.acquire_source_lease(source_id, owner="c", ttl_seconds=60, now=expired)
    assert store.source_lease(source_id)[0] == "c"
    assert not store.take_over_source_lease(
        source_id, stale_owner="b", owner="d", ttl_seconds=60, now=expired
    )
    assert store.take_over_source_lease(
        source_id, stale_owner="c", owner="d", ttl_seconds=60, now=expired
    )


def test_concurrent_acquirers_get_one_winner(store: MailStore) -> None:
    source_id = _source(store)
    now = datetime.now(UTC)
    results: dict[str, bool] = {}
    barrier = threading.Barrier(8)

    def contend(owner: str) -> None:
        barrier.wait()
        results[owner] = store.acquire_source_lease(source_id, owner=owner, ttl_seconds=30, now=now)

    threads = [threading.Thread(target=contend, args=(f"o{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results.values()) == 1


def test_origin_first_seen(store: MailStore) -> None:
    from gateway.store import OriginKey

    source_id = _source(store)
    user = store.get_user(name="alice")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    before = datetime.now(UTC)
    store.append_message(
        mailbox_id=inbox.id, content=b"Subject: x\r\n\r\n", origin=OriginKey(source_id, uidl="u1")
    )
    seen = store.origin_first_seen(source_id=source_id)
    assert set(seen) == {"u1"} and seen["u1"] >= before - timedelta(seconds=1)
