"""IMAP push (IDLE) watchers against a real Dovecot: activity, renewal, errors, reconnects, stop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient

from gateway.fetch.push import PushTiming, PushWatchers
from gateway.server import start_fetching
from gateway.store import MailStore, SourceInfo
from tests.fetch.helpers import add_imap_source, add_pop3_source, inbox_contents
from tests.fetch.test_scheduler import synced_once, wait_until
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_store import make_settings

pytestmark = pytest.mark.system

MESSAGE = b"From: a@example.org\r\nSubject: pushed\r\nMessage-ID: <push@t>\r\n\r\nbody\r\n"
FAST = PushTiming(
    refresh_seconds=60,
    backoff_initial_seconds=0.2,
    backoff_cap_seconds=0.8,
    stable_seconds=5,
    auth_retry_seconds=1.5,
)
# Dovecot re-reads its passwd-file by mtime (1 s resolution): every account this module logs
# in with is added before the first login.
USERS = [
    ("watch", "pw-watch"),
    ("renew", "pw-renew"),
    ("kick", "pw-kick"),
    ("wired", "pw-w"),
    ("mistyped", "pw-right"),
]


class ActivityLog:
    """The `on_activity` callback: records which source reported activity, and when."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self._changed = threading.Condition()

    def __call__(self, source_id: int) -> None:
        with self._changed:
            self.calls.append((source_id, time.monotonic()))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.calls) >= count, timeout)


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    for name, password in USERS:
        dovecot_module.add_user(name, password)


@contextmanager
def push_watchers(
    store: MailStore, timing: PushTiming = FAST
) -> Iterator[tuple[PushWatchers, ActivityLog]]:
    """Watchers reporting to a fresh `ActivityLog`, stopped on exit."""
    activity = ActivityLog()
    push = PushWatchers(store, on_activity=activity, timing=timing)
    try:
        yield push, activity
    finally:
        push.stop()


def imap_source(store: MailStore, server: DovecotServer, user: str, password: str) -> SourceInfo:
    return add_imap_source(
        store, port=server.imap_port, username=user, password=password, name=f"imap-{user}"
    )


def append_to(server: DovecotServer, user: str, password: str) -> None:
    """Deliver a message the way another mail client would: APPEND on its own connection."""
    with IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=10) as client:
        client.login(user, password)
        client.append("INBOX", MESSAGE)


def test_new_mail_is_reported_within_seconds_and_stop_is_prompt(
    sqlite_store: MailStore,
    dovecot_module: DovecotServer,
) -> None:
    source = imap_source(sqlite_store, dovecot_module, "watch", "pw-watch")
    with push_watchers(sqlite_store) as (push, activity):
        push.sync_sources()
        assert activity.wait_for(1, timeout=10), "a (re)connect reports activity at once"
        assert push.watching() == {source.id}

        sent = time.monotonic()
        append_to(dovecot_module, "watch", "pw-watch")
        assert activity.wait_for(2, timeout=3), "Dovecot's IDLE EXISTS reaches on_activity"
        latency = activity.calls[1][1] - sent
        print(f"\nIDLE push latency: {latency:.2f}s")
        assert [source_id for source_id, _ in activity.calls] == [source.id, source.id]

        started = time.monotonic()
        push.stop()
        assert time.monotonic() - started < 2.0
        assert push.watching() == set()


def test_idle_is_renewed_on_one_connection(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    source = imap_source(sqlite_store, dovecot_module, "renew", "pw-renew")
    renewing = replace(FAST, refresh_seconds=0.5)
    with push_watchers(sqlite_store, renewing) as (push, activity):
        push.sync_sources()
        assert activity.wait_for(1, timeout=10)
        time.sleep(2.0)  # four DONE/IDLE renewals
        assert len(activity.calls) == 1, "renewing IDLE neither reconnects nor reports activity"
        append_to(dovecot_module, "renew", "pw-renew")
        assert activity.wait_for(2, timeout=3)
        assert push.watching() == {source.id}


def test_dropped_connection_is_reopened(
    sqlite_store: MailStore,
    dovecot_module: DovecotServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    imap_source(sqlite_store, dovecot_module, "kick", "pw-kick")
    with push_watchers(sqlite_store) as (push, activity):
        push.sync_sources()
        assert activity.wait_for(1, timeout=10)
        dovecot_module.doveadm("kick", "kick")
        assert activity.wait_for(2, timeout=10), "the watcher reconnects and reports activity"
        assert "event=push_disconnected" in caplog.text
        append_to(dovecot_module, "kick", "pw-kick")
        assert activity.wait_for(3, timeout=3), "the new connection idles too"


def test_mail_appended_at_the_source_reaches_the_gateway_within_seconds(
    sqlite_store: MailStore, dovecot_module: DovecotServer, tmp_path: Path
) -> None:
    """The wiring `gateway serve` uses: push activity → scheduler → IMAP sync → our INBOX."""
    source = imap_source(sqlite_store, dovecot_module, "wired", "pw-w")
    settings = make_settings(tmp_path / "unused", fetch_concurrency=2, fetch_rescan_seconds=60)

    async def scenario() -> float:
        scheduler = await start_fetching(sqlite_store, settings)
        assert scheduler is not None
        try:
            # The first sync (a new source) finds the mailbox empty and sets the next run an
            # interval away: what comes next arrives by push, not by polling.
            await wait_until(lambda: synced_once(sqlite_store, source.id), timeout=10)
            watchers = scheduler.watchers
            assert isinstance(watchers, PushWatchers)
            await wait_until(lambda: watchers.is_idling(source.id), timeout=10)
            started = time.monotonic()
            await asyncio.to_thread(append_to, dovecot_module, "wired", "pw-w")
            await wait_until(lambda: len(inbox_contents(sqlite_store)) == 1, timeout=5)
            return time.monotonic() - started
        finally:
            await scheduler.stop()

    seconds = asyncio.run(scenario())
    print(f"\nAPPEND at the source to stored in the gateway: {seconds:.2f}s")
    [(content, _keywords)] = inbox_contents(sqlite_store)
    assert content == MESSAGE


@pytest.mark.slow  # Dovecot's auth penalty delays each failed login by seconds
def test_new_password_ends_the_long_wait_after_a_refused_login_at_once(
    sqlite_store: MailStore,
    dovecot_module: DovecotServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As `gateway serve` runs it (production timing: 30 minutes after a refused login): a
    new password (`source passwd`, `source edit`, the admin API all call set_source_secret)
    reconnects the watcher within seconds, through the sources revision the scheduler reads."""
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    source = imap_source(sqlite_store, dovecot_module, "mistyped", "pw-wrong")
    settings = make_settings(tmp_path / "unused", fetch_concurrency=2, fetch_rescan_seconds=600)

    async def scenario() -> float:
        scheduler = await start_fetching(sqlite_store, settings)
        assert scheduler is not None
        try:
            await wait_until(lambda: "retry_seconds=1800.0" in caplog.text, timeout=20)
            watchers = scheduler.watchers
            assert isinstance(watchers, PushWatchers)
            assert not watchers.is_idling(source.id)
            changed = time.monotonic()
            await asyncio.to_thread(
                sqlite_store.set_source_secret, source_id=source.id, secret="pw-right"
            )
            await wait_until(lambda: watchers.is_idling(source.id), timeout=15)
            return time.monotonic() - changed
        finally:
            await scheduler.stop()

    seconds = asyncio.run(scenario())
    print(f"\nnew source password to push watching again: {seconds:.2f}s")
    # The revision is read every second and Dovecot delays a login after failed ones.
    assert seconds < 8
    assert "pw-right" not in caplog.text and "pw-wrong" not in caplog.text


def test_sync_sources_watches_only_enabled_imap_sources_with_push(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    port = dovecot_module.imap_port
    watched = add_imap_source(sqlite_store, port=port, username="watch", password="pw-watch")
    no_push = add_imap_source(
        sqlite_store,
        port=port,
        username="renew",
        password="pw-renew",
        name="no-push",
        options={"push": False},
    )
    capped = add_imap_source(
        sqlite_store,
        port=port,
        username="renew",
        password="pw-renew",
        name="one-connection",
        options={"max_connections": 1},
    )
    add_pop3_source(
        sqlite_store, port=dovecot_module.pop3_port, username="x", password="y", name="pop"
    )
    with push_watchers(sqlite_store) as (push, activity):
        push.sync_sources()
        assert push.watching() == {watched.id}
        # Disabled (or removed) sources are retired promptly.
        sources = sqlite_store.list_sources()
        started = time.monotonic()
        push.sync_sources([replace(s, enabled=False) for s in sources])
        assert time.monotonic() - started < 2.0
        assert push.watching() == set()
        assert all(source_id not in (no_push.id, capped.id) for source_id, _ in activity.calls)


@pytest.mark.slow  # Dovecot's auth penalty delays each failed login by seconds
def test_wrong_password_is_retried_slowly_until_it_works(
    sqlite_store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    with DovecotServer() as server, push_watchers(sqlite_store) as (push, activity):
        # The account does not exist yet, so every login fails (Dovecot delays each failure).
        source = imap_source(sqlite_store, server, "late", "pw-late")
        push.sync_sources()
        assert _eventually(lambda: caplog.text.count("error_class=auth") >= 2, timeout=15)
        # A refused login waits the long auth retry, not the network backoff (0.2, 0.4 …):
        # providers lock accounts that keep retrying a wrong password.
        assert "retry_seconds=1.5" in caplog.text and "retry_seconds=0.2" not in caplog.text
        assert "pw-late" not in caplog.text, "secrets are never logged"
        assert push.watching() == {source.id} and activity.calls == []
        server.add_user("late", "pw-late")
        assert activity.wait_for(1, timeout=15), "the next retry logs in and watches"
        started = time.monotonic()
        push.stop()
        assert time.monotonic() - started < 2.5


def test_watcher_connects_once_an_unreachable_server_comes_up(
    sqlite_store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    server = DovecotServer()  # ports chosen, nothing listening yet
    try:
        server.add_user("back", "pw-back")
        imap_source(sqlite_store, server, "back", "pw-back")
        with push_watchers(sqlite_store) as (push, activity):
            push.sync_sources()
            assert _eventually(lambda: caplog.text.count("error_class=connect") >= 3)
            assert "retry_seconds=0.8" in caplog.text, "the backoff grows to its cap"
            server.start()
            assert activity.wait_for(1, timeout=5), "connected once the server was up"
            append_to(server, "back", "pw-back")
            assert activity.wait_for(2, timeout=3)
    finally:
        server.stop()


def test_server_without_idle_is_left_to_polling(
    sqlite_store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    with NoIdleDovecot() as server, push_watchers(sqlite_store) as (push, activity):
        server.add_user("plain", "pw-plain")
        imap_source(sqlite_store, server, "plain", "pw-plain")
        push.sync_sources()
        assert _eventually(lambda: "event=push_unavailable" in caplog.text)
        assert _eventually(lambda: push.watching() == set())
        push.sync_sources()  # a rescan does not start it again
        time.sleep(0.5)
        assert caplog.text.count("event=push_unavailable") == 1
        assert activity.calls == []


class NoIdleDovecot(DovecotServer):
    """Dovecot advertising a capability list without IDLE (RFC 2177), like some old servers."""

    def _config_text(self) -> str:
        return super()._config_text() + "imap_capability = IMAP4rev1 LITERAL+ SASL-IR\n"


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())
