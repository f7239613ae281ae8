"""The fetch scheduler: due-ness, jitter, bounded concurrency, coalescing, write-back, stop.

Scheduling logic is driven with a recording `sync` function on a real store (the runner's part
is proven by the POP3 tests); one system test runs real POP3 syncs against Dovecot.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from imapclient import IMAPClient

from gateway.fetch.errors import SyncError
from gateway.fetch.scheduler import FetchScheduler
from gateway.store import MailStore, SourceInfo
from tests.fetch.helpers import add_imap_source, add_pop3_source, inbox_contents
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <1@t>\r\n\r\nbody\r\n"


class ManualClock:
    """The scheduler's injected clock, moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingSync:
    """A stand-in for `sync_source_once` that records calls and how many ran at once."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        hang: Collection[int] = (),
        fail: Callable[[SourceInfo], BaseException | None] = lambda _source: None,
    ) -> None:
        self.delay = delay
        self.hang = set(hang)
        self.fail = fail
        self.release = threading.Event()
        self.calls: list[int] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, store: MailStore, source: SourceInfo) -> None:
        with self._lock:
            self.calls.append(source.id)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if source.id in self.hang:
                self.release.wait(30)
            elif self.delay:
                time.sleep(self.delay)
            error = self.fail(source)
            if error is not None:
                raise error
        finally:
            with self._lock:
                self.active -= 1

    def count(self, source_id: int) -> int:
        with self._lock:
            return self.calls.count(source_id)


def add_sources(
    store: MailStore, count: int, *, protocol: str = "pop3", poll_interval: int = 60
) -> list[SourceInfo]:
    """`count` sources of user alice that no test here ever connects to."""
    try:
        user = store.get_user(name="alice")
    except Exception:
        user = store.create_user(name="alice", password="pw")
    first = len(store.list_sources(user_id=user.id))
    return [
        store.add_source(
            user_id=user.id,
            name=f"{protocol}-{first + n}",
            protocol=protocol,
            host="127.0.0.1",
            port=9,
            security="none",
            username="u",
            secret="pw",
            poll_interval=poll_interval,
        )
        for n in range(count)
    ]


def set_next_run(store: MailStore, source: SourceInfo, delta: timedelta) -> None:
    now = datetime.now(UTC)
    store.record_sync_success(source.id, fetched=0, bytes=0, now=now, next_run_at=now + delta)


@asynccontextmanager
async def running(scheduler: FetchScheduler) -> AsyncIterator[FetchScheduler]:
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def from_other_thread(call: Callable[[], None]) -> None:
    thread = threading.Thread(target=call)
    thread.start()
    thread.join()


def disable_in_listings(
    monkeypatch: pytest.MonkeyPatch, store: MailStore, source_ids: Collection[int]
) -> None:
    """Make the store list these sources as disabled (it has no operation for that yet)."""
    list_sources = store.list_sources

    def listed(*, user_id: int | None = None) -> list[SourceInfo]:
        return [
            replace(source, enabled=False) if source.id in source_ids else source
            for source in list_sources(user_id=user_id)
        ]

    monkeypatch.setattr(store, "list_sources", listed)


def test_due_sources_run_once_and_others_wait(
    sqlite_store: MailStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    never_run, overdue, later, disabled = add_sources(sqlite_store, 4)
    set_next_run(sqlite_store, overdue, timedelta(minutes=-5))
    set_next_run(sqlite_store, later, timedelta(hours=1))
    disable_in_listings(monkeypatch, sqlite_store, {disabled.id})
    sync = RecordingSync()
    clock = ManualClock()

    async def scenario() -> None:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=4, rescan_seconds=0.2, sync=sync, clock=clock
        )
        async with running(scheduler):
            await wait_until(lambda: sync.count(never_run.id) and sync.count(overdue.id))
            await scheduler.settled()
            # 50 s on: the fake sync wrote no next_run_at, yet nothing re-ran (a finished
            # source waits its 60 s interval) and the not-due ones are still waiting.
            clock.advance(50)
            scheduler.check_due_sources()
            await scheduler.settled()
            assert sorted(sync.calls) == sorted([never_run.id, overdue.id])
            # Past the interval and its jitter (at most 6 s): both run again, nothing else.
            clock.advance(20)
            scheduler.check_due_sources()
            await wait_until(lambda: len(sync.calls) == 4)
            await scheduler.settled()

    asyncio.run(scenario())
    assert sorted(sync.calls) == sorted([never_run.id, overdue.id] * 2)


def test_jitter_spreads_sources_that_share_a_due_time(sqlite_store: MailStore) -> None:
    sources = add_sources(sqlite_store, 20, poll_interval=20)
    for source in sources:
        set_next_run(sqlite_store, source, timedelta(0))
    sync = RecordingSync()
    clock = ManualClock()

    async def scenario() -> list[int]:
        scheduler = FetchScheduler(
            sqlite_store,
            concurrency=20,
            rescan_seconds=60,
            sync=sync,
            rng=random.Random(3),
            clock=clock,
        )
        async with running(scheduler):
            clock.advance(0.2)
            scheduler.check_due_sources()
            await scheduler.settled()
            early = len(sync.calls)
            # Jitter is at most 10% of the 20 s interval: everyone has run 2 s on.
            clock.advance(1.8)
            scheduler.check_due_sources()
            await wait_until(lambda: len(sync.calls) == 20, timeout=5)
            return [early]

    [early] = asyncio.run(scenario())
    assert early < 10, "jitter of up to 2 s keeps most sources out of the first 0.2 s"
    assert sorted(sync.calls) == sorted(source.id for source in sources)


def test_concurrency_bound_holds(sqlite_store: MailStore) -> None:
    sources = add_sources(sqlite_store, 6)
    sync = RecordingSync(delay=0.3)

    async def scenario() -> None:
        scheduler = FetchScheduler(sqlite_store, concurrency=2, rescan_seconds=60, sync=sync)
        async with running(scheduler):
            await wait_until(lambda: len(sync.calls) == 6 and sync.active == 0)

    asyncio.run(scenario())
    assert sync.max_active == 2
    assert sorted(sync.calls) == sorted(source.id for source in sources)


def test_hanging_source_does_not_stall_others_and_stop_stays_bounded(
    sqlite_store: MailStore,
) -> None:
    stuck, *others = add_sources(sqlite_store, 5)
    sync = RecordingSync(delay=0.05, hang={stuck.id})

    async def scenario() -> float:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=2, rescan_seconds=60, sync=sync, stop_timeout=0.5
        )
        await scheduler.start()
        try:
            await wait_until(lambda: all(sync.count(source.id) for source in others))
        finally:
            started = time.monotonic()
            await scheduler.stop()
        return time.monotonic() - started

    try:
        stop_seconds = asyncio.run(scenario())
    finally:
        sync.release.set()
    assert sync.count(stuck.id) == 1
    assert stop_seconds < 2.0, "stop waits for a hanging sync only up to its bound"


def test_requests_coalesce_while_queued_and_rerun_once_after_a_running_sync(
    sqlite_store: MailStore,
) -> None:
    blocker, target = add_sources(sqlite_store, 2)
    for source in (blocker, target):
        set_next_run(sqlite_store, source, timedelta(hours=1))
    sync = RecordingSync(hang={blocker.id})

    async def scenario(scheduler: FetchScheduler) -> None:
        async with running(scheduler):
            # The only slot is held by `blocker`: five requests for `target` queue it once.
            scheduler.request_sync(blocker.id, reason="test")
            await wait_until(lambda: sync.active == 1)
            for _ in range(5):
                from_other_thread(lambda: scheduler.request_sync(target.id, reason="test"))
            # While `blocker` runs, more requests for it make exactly one more run.
            for _ in range(5):
                scheduler.request_sync(blocker.id, reason="test")
            await asyncio.sleep(0)  # the requests reach the loop
            assert sync.count(target.id) == 0
            sync.hang.clear()
            sync.release.set()
            await scheduler.settled()

    scheduler = FetchScheduler(sqlite_store, concurrency=1, rescan_seconds=60, sync=sync)
    asyncio.run(scenario(scheduler))
    assert sync.count(target.id) == 1
    assert sync.count(blocker.id) == 2


def test_failing_syncs_do_not_stop_the_loop(sqlite_store: MailStore) -> None:
    crashing, failing, healthy = add_sources(sqlite_store, 3)
    for source in (crashing, failing, healthy):
        set_next_run(sqlite_store, source, timedelta(hours=1))

    def fail(source: SourceInfo) -> BaseException | None:
        if source.id == crashing.id:
            return RuntimeError("bug in an engine")
        if source.id == failing.id:
            return SyncError("auth", "login rejected")
        return None

    sync = RecordingSync(fail=fail)

    async def scenario() -> None:
        scheduler = FetchScheduler(sqlite_store, concurrency=2, rescan_seconds=60, sync=sync)
        async with running(scheduler):
            for source in (crashing, failing):
                scheduler.request_sync(source.id, reason="test")
            await wait_until(lambda: len(sync.calls) == 2 and sync.active == 0)
            for source in (healthy, crashing):
                scheduler.request_sync(source.id, reason="test")
            await wait_until(lambda: sync.count(healthy.id) == 1 and sync.count(crashing.id) == 2)

    asyncio.run(scenario())


def test_request_for_a_source_added_after_start_is_served(sqlite_store: MailStore) -> None:
    sync = RecordingSync()

    async def scenario() -> int:
        scheduler = FetchScheduler(sqlite_store, concurrency=2, rescan_seconds=3600, sync=sync)
        async with running(scheduler):
            await asyncio.sleep(0.1)
            [source] = await asyncio.to_thread(add_sources, sqlite_store, 1)
            await asyncio.to_thread(set_next_run, sqlite_store, source, timedelta(hours=1))
            scheduler.request_sync(source.id, reason="test")
            scheduler.request_sync(10_000, reason="test")  # no such source: dropped, logged
            await wait_until(lambda: sync.count(source.id) == 1)
            return source.id

    source_id = asyncio.run(scenario())
    assert sync.calls == [source_id]


def test_stop_is_prompt_when_idle(sqlite_store: MailStore) -> None:
    add_sources(sqlite_store, 2)

    async def scenario() -> float:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=2, rescan_seconds=60, sync=RecordingSync()
        )
        await scheduler.start()
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await scheduler.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5


def feeds(store: MailStore, source: SourceInfo, mailbox_id: int) -> None:
    """Record that the source's INBOX feeds `mailbox_id`, as its first sync would."""
    store.save_source_folder(
        source_id=source.id,
        remote_name="INBOX",
        mailbox_id=mailbox_id,
        uidvalidity=1,
        last_uid=0,
        highestmodseq=0,
        local_modseq=0,
    )


def test_local_change_syncs_the_imap_sources_feeding_the_mailbox_once(
    sqlite_store: MailStore,
) -> None:
    [imap_source, elsewhere] = add_sources(sqlite_store, 2, protocol="imap")
    [pop3_source] = add_sources(sqlite_store, 1, protocol="pop3")
    for source in (imap_source, elsewhere, pop3_source):
        set_next_run(sqlite_store, source, timedelta(hours=1))
    inbox = sqlite_store.get_mailbox(user_id=imap_source.user_id, name="INBOX")
    other = sqlite_store.create_mailbox(user_id=imap_source.user_id, name="Other")
    feeds(sqlite_store, imap_source, inbox.id)
    feeds(sqlite_store, elsewhere, other.id)  # feeds another mailbox: not synced

    def store_like_an_engine(source: SourceInfo) -> BaseException | None:
        # A sync's own commit notifies the change listener too; it must not cause another sync.
        sqlite_store.append_message(
            mailbox_id=inbox.id, content=MESSAGE, actor=f"source:{source.id}"
        )
        return None

    sync = RecordingSync(fail=store_like_an_engine)

    async def scenario() -> None:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=2, rescan_seconds=60, sync=sync, change_debounce_seconds=0.2
        )
        async with running(scheduler):
            await scheduler.settled()
            # A device stores three messages in a burst: one write-back sync of the IMAP source.
            for _ in range(3):
                await asyncio.to_thread(
                    sqlite_store.append_message, mailbox_id=inbox.id, content=MESSAGE
                )
            await wait_until(lambda: sync.count(imap_source.id) == 1)
            await scheduler.settled()

    asyncio.run(scenario())
    assert sync.calls == [imap_source.id]


def test_local_change_waits_for_a_failing_source_backoff(sqlite_store: MailStore) -> None:
    [imap_source] = add_sources(sqlite_store, 1, protocol="imap")
    feeds(
        sqlite_store,
        imap_source,
        sqlite_store.get_mailbox(user_id=imap_source.user_id, name="INBOX").id,
    )
    now = datetime.now(UTC)
    sqlite_store.record_sync_failure(
        imap_source.id,
        error_class="connect",
        message="connection refused",
        now=now,
        next_run_at=now + timedelta(hours=1),
    )
    inbox = sqlite_store.get_mailbox(user_id=imap_source.user_id, name="INBOX")
    sync = RecordingSync()

    async def scenario() -> None:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=2, rescan_seconds=60, sync=sync, change_debounce_seconds=0.1
        )
        async with running(scheduler):
            await scheduler.settled()
            await asyncio.to_thread(
                sqlite_store.append_message, mailbox_id=inbox.id, content=MESSAGE
            )
            await scheduler.settled()

    asyncio.run(scenario())
    assert sync.calls == []


@pytest.mark.system
def test_requested_pop3_sync_brings_new_mail_from_dovecot(
    sqlite_store: MailStore, dovecot: DovecotServer
) -> None:
    source = add_pop3_source(
        sqlite_store, port=dovecot.pop3_port, username=DOVECOT_USER, password=DOVECOT_PASSWORD
    )

    async def scenario() -> float:
        scheduler = FetchScheduler(sqlite_store, concurrency=2, rescan_seconds=60)
        async with running(scheduler):
            # The new source syncs at once (an empty mailbox), which sets its next run.
            await wait_until(lambda: synced_once(sqlite_store, source.id), timeout=10)
            await asyncio.to_thread(dovecot.load_maildir, DOVECOT_USER, "INBOX", [MESSAGE])
            started = time.monotonic()
            scheduler.request_sync(source.id, reason="test")
            await wait_until(lambda: len(inbox_contents(sqlite_store)) == 1, timeout=5)
            return time.monotonic() - started

    seconds = asyncio.run(scenario())
    assert seconds < 5
    [(content, _keywords)] = inbox_contents(sqlite_store)
    assert content == MESSAGE


@pytest.mark.system
def test_local_flag_change_reaches_the_imap_source_within_seconds(
    sqlite_store: MailStore, dovecot: DovecotServer
) -> None:
    with dovecot_session(dovecot) as client:
        client.append("INBOX", MESSAGE)
    source = add_imap_source(
        sqlite_store, port=dovecot.imap_port, username=DOVECOT_USER, password=DOVECOT_PASSWORD
    )
    inbox = sqlite_store.get_mailbox(user_id=source.user_id, name="INBOX")

    async def scenario() -> float:
        scheduler = FetchScheduler(sqlite_store, concurrency=2, rescan_seconds=60)
        async with running(scheduler):
            await wait_until(lambda: synced_once(sqlite_store, source.id), timeout=10)
            [entry] = sqlite_store.list_entries(mailbox_id=inbox.id)
            started = time.monotonic()
            # As a device's STORE would: the scheduler hears of it through the change listener.
            await asyncio.to_thread(
                sqlite_store.set_flags,
                mailbox_id=inbox.id,
                uids=[entry.uid],
                flags=["\\Flagged"],
                mode="add",
            )
            await wait_until(lambda: b"\\Flagged" in remote_flags(dovecot), timeout=5)
            return time.monotonic() - started

    seconds = asyncio.run(scenario())
    print(f"\nlocal flag change written back to the IMAP source in {seconds:.2f}s")


@contextmanager
def dovecot_session(server: DovecotServer) -> Iterator[IMAPClient]:
    with IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=10) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        yield client


def remote_flags(server: DovecotServer) -> tuple[bytes, ...]:
    """The flags of the only message in the Dovecot INBOX."""
    with dovecot_session(server) as client:
        client.select_folder("INBOX", readonly=True)
        [data] = client.fetch(client.search("ALL"), ["FLAGS"]).values()
        return tuple(data[b"FLAGS"])


def synced_once(store: MailStore, source_id: int) -> bool:
    """Whether the source has finished a sync successfully."""
    return any(s.id == source_id and s.last_success_at for s in store.list_sources())
