"""Source leases across hosts: a heartbeat keeps a live sync's lease, a dead holder's lease is
taken over once it expires (short lease times here; the default is 60 s renewed every 15 s)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from gateway.fetch.errors import SyncError
from gateway.fetch.lease_heartbeat import LeaseHeartbeat, LeaseTiming
from gateway.fetch.runner import LEASE_TIMING, SourceBusyError, run_source_sync
from gateway.store import MailStore
from tests.fetch.fake_pop3 import FakePop3Config, fake_pop3
from tests.fetch.helpers import add_pop3_source
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER

SHORT = LeaseTiming(ttl_seconds=1.0, renew_seconds=0.2)
# A holder on another host: `owner_is_dead` cannot see its process, only its lease's expiry.
OTHER_HOST = "replica-b.example/4242/777"


def test_default_lease_is_short_and_renewed_well_within_it() -> None:
    assert LEASE_TIMING.ttl_seconds <= 60
    assert LEASE_TIMING.renew_seconds * 3 <= LEASE_TIMING.ttl_seconds


def test_a_holder_that_stops_heartbeating_loses_the_source_after_the_ttl(
    store: MailStore, dovecot: DovecotServer
) -> None:
    dovecot.load_maildir(DOVECOT_USER, "INBOX", [b"Subject: one\r\n\r\nbody\r\n"])
    source = add_pop3_source(
        store, port=dovecot.pop3_port, username=DOVECOT_USER, password=DOVECOT_PASSWORD
    )
    assert store.acquire_source_lease(
        source.id, owner=OTHER_HOST, ttl_seconds=SHORT.ttl_seconds, now=datetime.now(UTC)
    )
    with LeaseHeartbeat(store, source_id=source.id, owner=OTHER_HOST, timing=SHORT) as remote:
        # Three lease times: only the heartbeat keeps the other host's lease from lapsing.
        deadline = time.monotonic() + 3 * SHORT.ttl_seconds
        while time.monotonic() < deadline:
            with pytest.raises(SourceBusyError):
                run_source_sync(store, source, lease=SHORT)
            time.sleep(0.1)
        assert not remote.lost
    died = time.monotonic()  # the holder's process is gone: no more renewals, no release
    while True:
        try:
            report = run_source_sync(store, source, lease=SHORT)
            break
        except SourceBusyError:
            assert time.monotonic() - died < SHORT.ttl_seconds + 1.0
            time.sleep(0.05)
    waited = time.monotonic() - died
    assert SHORT.ttl_seconds - SHORT.renew_seconds - 0.1 <= waited <= SHORT.ttl_seconds + 1.0
    assert report.fetched == 1
    assert store.source_lease(source.id) == (None, None)


def test_a_live_sync_without_progress_is_never_taken_over(sqlite_store: MailStore) -> None:
    """A server that greets and then says nothing: the sync makes no progress for several
    lease times, and still another replica never gets the source."""
    with fake_pop3(FakePop3Config(hang_after_greeting=True)) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            options={"timeout_seconds": 4 * SHORT.ttl_seconds},
        )
        failure: list[BaseException] = []

        def sync() -> None:
            try:
                run_source_sync(sqlite_store, source, lease=SHORT)
            except BaseException as error:  # handed to the test thread
                failure.append(error)

        syncing = threading.Thread(target=sync)
        started = time.monotonic()
        syncing.start()
        while sqlite_store.source_lease(source.id)[0] is None:
            time.sleep(0.01)
        # Another replica tries for the source until it gets it: only once the sync gave up.
        while not sqlite_store.acquire_source_lease(
            source.id, owner=OTHER_HOST, ttl_seconds=SHORT.ttl_seconds, now=datetime.now(UTC)
        ):
            assert time.monotonic() - started < 30
            time.sleep(0.05)
        taken_after = time.monotonic() - started
        syncing.join()
    assert taken_after >= 4 * SHORT.ttl_seconds - 0.2, "a live sync's lease was taken over"
    [error] = failure
    assert isinstance(error, SyncError) and error.error_class == "timeout", error
