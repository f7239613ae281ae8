"""What surprised a new user of the fetch engine (issue 16), each pinned by a test against the
real peer where one runs here (Dovecot), and the in-memory IMAP source where a server must
misbehave (refuse to create a folder)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from imapclient import IMAPClient

from gateway.fetch import source_keyword
from gateway.fetch.errors import SyncError
from gateway.fetch.imap_peer import ImapPeer
from gateway.fetch.imap_source import sync_imap_source
from gateway.fetch.runner import run_source_sync
from gateway.fetch.scheduler import FetchScheduler
from gateway.store import MailStore, SourceInfo
from tests.fetch.fake_imap import fake_imap
from tests.fetch.helpers import add_imap_source, add_pop3_source
from tests.fetch.memory_imap import MemoryImap
from tests.support.dovecot import DovecotServer

USERS = ("notrash", "dup1", "dup2")


@pytest.fixture(scope="module")
def accounts(dovecot_module: DovecotServer) -> DovecotServer:
    for name in USERS:
        dovecot_module.add_user(name, "pw")
    return dovecot_module


def message(tag: str, number: int) -> bytes:
    return (
        f"From: n{number}@example.org\r\nSubject: {tag} {number}\r\n"
        f"Message-ID: <{tag}{number}@t>\r\n\r\nbody {number}\r\n"
    ).encode()


def delete_on_a_device(store: MailStore, source: SourceInfo, mailbox: str = "INBOX") -> None:
    box = store.get_mailbox(user_id=source.user_id, name=mailbox)
    first = store.list_entries(mailbox_id=box.id)[0]
    store.set_flags(mailbox_id=box.id, uids=[first.uid], flags=["\\Deleted"], mode="add")
    store.expunge(mailbox_id=box.id)


def remote_subjects(dovecot: DovecotServer, user: str, folder: str) -> list[bytes]:
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(user, "pw")
        if not any(name == folder for _flags, _delimiter, name in client.list_folders()):
            return []
        client.select_folder(folder, readonly=True)
        data = client.fetch(client.search(), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        return sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() for v in data.values())


# --- 1. a delete at the device reaches a source without Trash ------------------------------


@pytest.mark.system
def test_delete_reaches_a_source_without_trash_by_creating_one(
    sqlite_store: MailStore, accounts: DovecotServer
) -> None:
    accounts.load_maildir("notrash", "INBOX", [message("t", 1), message("t", 2)])
    source = add_imap_source(
        sqlite_store, port=accounts.imap_port, username="notrash", password="pw"
    )
    run_source_sync(sqlite_store, source)
    delete_on_a_device(sqlite_store, source)
    run_source_sync(sqlite_store, source)
    assert remote_subjects(accounts, "notrash", "INBOX") == [b"Subject: t 2"]
    assert remote_subjects(accounts, "notrash", "Trash") == [b"Subject: t 1"]
    [listed] = sqlite_store.list_sources(user_id=source.user_id)
    assert listed.removals_not_propagated == 0


class NoCreate(MemoryImap):
    def create_folder(self, folder: str) -> None:
        raise SyncError("protocol", "CREATE refused: [NOPERM] not allowed")


def test_a_removal_the_source_cannot_carry_out_is_counted_on_the_source(
    sqlite_store: MailStore,
) -> None:
    remote = NoCreate()
    remote.deliver("INBOX", message("c", 1))
    source = add_imap_source(sqlite_store, port=9, username="u", password="pw")

    def sync() -> None:
        def opener(_source: SourceInfo, peer: ImapPeer) -> ImapPeer:
            return peer

        sync_imap_source(sqlite_store, source, open_peer=partial(opener, peer=remote))

    sync()
    delete_on_a_device(sqlite_store, source)
    sync()
    assert len(remote.folders["INBOX"].messages) == 1  # still at the source
    [listed] = sqlite_store.list_sources(user_id=source.user_id)
    assert listed.removals_not_propagated == 1


# --- 2. merged duplicates count for the second source and carry its keyword ----------------


@pytest.mark.system
def test_merged_duplicates_are_counted_and_tagged_for_every_source(
    sqlite_store: MailStore, accounts: DovecotServer
) -> None:
    shared = [message("d", n) for n in range(3)]
    accounts.load_maildir("dup1", "INBOX", shared)
    accounts.load_maildir("dup2", "INBOX", shared)
    first = add_imap_source(
        sqlite_store, port=accounts.imap_port, username="dup1", password="pw", name="one"
    )
    second = add_pop3_source(
        sqlite_store, port=accounts.pop3_port, username="dup2", password="pw", name="two"
    )
    run_source_sync(sqlite_store, first)
    report = run_source_sync(sqlite_store, second)
    assert report.adopted == 3
    counters = {s.name: s.messages_fetched for s in sqlite_store.list_sources()}
    assert counters == {"one": 3, "two": 3}
    inbox = sqlite_store.get_mailbox(user_id=first.user_id, name="INBOX")
    entries = sqlite_store.list_entries(mailbox_id=inbox.id)
    assert len(entries) == 3
    for entry in entries:
        assert {source_keyword("one"), source_keyword("two")} <= entry.keywords


# --- 3. a new or changed source syncs at once ------------------------------------------------


def test_a_source_added_while_serving_syncs_without_waiting_for_the_rescan(
    sqlite_store: MailStore,
) -> None:
    user = sqlite_store.create_user(name="alice", password="pw")
    synced: list[int] = []

    def sync(_store: MailStore, source: SourceInfo) -> None:
        synced.append(source.id)

    async def scenario() -> float:
        scheduler = FetchScheduler(
            sqlite_store, concurrency=1, rescan_seconds=3600, sync=sync, source_watch_seconds=0.1
        )
        await scheduler.start()
        try:
            await scheduler.settled()
            started = asyncio.get_running_loop().time()
            # As `gateway source add` in another process would.
            added = await asyncio.to_thread(
                sqlite_store.add_source,
                user_id=user.id,
                name="new",
                protocol="pop3",
                host="127.0.0.1",
                port=9,
                security="tls",
                username="u",
                secret="pw",
            )
            while added.id not in synced:
                await asyncio.sleep(0.02)
                assert asyncio.get_running_loop().time() - started < 5, "not woken"
            return asyncio.get_running_loop().time() - started
        finally:
            await scheduler.stop()

    assert asyncio.run(scenario()) < 5


# --- 4. wrong passwords: long backoff, then stop until the password changes ------------------


def test_wrong_password_backs_off_long_then_stops_until_it_changes(
    sqlite_store: MailStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.fetch")
    with fake_imap(login_reply=b"NO [AUTHENTICATIONFAILED] Authentication failed.") as server:
        source = add_imap_source(sqlite_store, port=server.port, username="u", password="wrong")
        for attempt in range(3):
            before = datetime.now(UTC)
            with pytest.raises(SyncError) as caught:
                run_source_sync(sqlite_store, source)
            error = caught.value
            assert error.error_class == "auth"
            # Readable text, not Python's repr of the server's bytes.
            assert "b'" not in error.message and "[AUTHENTICATIONFAILED]" in error.message
            [source] = sqlite_store.list_sources(user_id=source.user_id)
            assert source.next_run_at is not None
            assert source.next_run_at - before >= timedelta(minutes=15 * 2**attempt) - timedelta(
                seconds=5
            )
        assert source.credentials_rejected
        assert server.login_attempts == 3
        assert "event=source_credentials_rejected source=alice/isp" in caplog.text
        fixed = sqlite_store.set_source_secret(source_id=source.id, secret="right")
        assert not fixed.credentials_rejected and fixed.next_run_at is None


def test_a_source_whose_credentials_were_rejected_is_not_scheduled(
    sqlite_store: MailStore,
) -> None:
    source = add_pop3_source(sqlite_store, port=9, username="u", password="pw")
    now = datetime.now(UTC)
    for _ in range(3):
        sqlite_store.record_sync_failure(
            source.id, error_class="auth", message="login rejected", now=now, next_run_at=now
        )
    synced: list[int] = []

    async def scenario() -> None:
        scheduler = FetchScheduler(
            sqlite_store,
            concurrency=1,
            rescan_seconds=3600,
            sync=lambda _s, src: synced.append(src.id),
        )
        await scheduler.start()
        try:
            await scheduler.settled()
            scheduler.request_sync(source.id, reason="test")
            await scheduler.settled()
            assert synced == []
            await asyncio.to_thread(
                sqlite_store.set_source_secret, source_id=source.id, secret="new"
            )
            while not synced:
                await asyncio.sleep(0.02)
        finally:
            await scheduler.stop()

    asyncio.run(scenario())
    assert synced == [source.id]


# --- 7. a TLS failure against a plaintext port says what to try ------------------------------


@pytest.mark.system
def test_tls_against_a_plaintext_port_hints_at_starttls(
    sqlite_store: MailStore, accounts: DovecotServer
) -> None:
    source = add_imap_source(
        sqlite_store, port=accounts.imap_port, username="notrash", password="pw", security="tls"
    )
    with pytest.raises(SyncError) as caught:
        run_source_sync(sqlite_store, source)
    assert caught.value.error_class == "tls"
    assert "starttls" in caught.value.message


def test_source_ids_are_never_reused(store: MailStore) -> None:
    first = add_pop3_source(store, port=9, username="u", password="pw", name="a")
    store.remove_source(source_id=first.id)
    second = add_pop3_source(store, port=9, username="u", password="pw", name="b")
    assert second.id > first.id
