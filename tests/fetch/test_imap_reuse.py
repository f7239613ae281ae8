"""A source's logged-in IMAP connection is kept between its syncs, and replaced when it is not
fit for reuse (dropped by the server, idle too long, source settings changed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from imapclient import IMAPClient

from gateway.fetch.connections import PasswordAuthenticator
from gateway.fetch.imap_client import ImapClientPeer
from gateway.fetch.imap_reuse import ImapConnectionCache
from gateway.fetch.imap_source import sync_imap_source
from gateway.store import MailStore, SourceInfo
from tests.fetch.helpers import add_imap_source
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.system
USERS = ("reuse", "kicked", "stale", "changed", "closed")


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    # Dovecot re-reads its passwd file by mtime (1 s resolution): add every account up front.
    for name in USERS:
        dovecot_module.add_user(name, "pw")


class CountingLogins(PasswordAuthenticator):
    def __init__(self) -> None:
        super().__init__("pw")
        self.logins = 0

    def authenticate_imap(self, client: ImapClientPeer, *, username: str) -> None:
        self.logins += 1
        super().authenticate_imap(client, username=username)


def _message(number: int) -> bytes:
    head = f"From: a@example.org\r\nSubject: r{number}\r\nMessage-ID: <r{number}@t>\r\n"
    return (head + "\r\nx\r\n").encode()


def _deliver(dovecot: DovecotServer, user: str, number: int) -> None:
    client = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10)
    client.login(user, "pw")
    client.append("INBOX", _message(number))
    client.logout()


def _inbox_size(store: MailStore) -> int:
    user = store.get_user(name="alice")
    return store.mailbox_status(
        mailbox_id=store.get_mailbox(user_id=user.id, name="INBOX").id
    ).messages


def _two_syncs(
    store: MailStore,
    source: SourceInfo,
    dovecot: DovecotServer,
    cache: ImapConnectionCache,
    between: Callable[[], object] | None = None,
) -> CountingLogins:
    logins = CountingLogins()
    _deliver(dovecot, source.username, 1)
    sync_imap_source(store, source, authenticator=logins, connections=cache)
    assert len(cache) == 1, "a successful sync keeps its connection"
    if between is not None:
        between()
    _deliver(dovecot, source.username, 2)
    report = sync_imap_source(store, source, authenticator=logins, connections=cache)
    assert report.fetched == 1 and _inbox_size(store) == 2
    return logins


@pytest.fixture
def cache() -> Iterator[ImapConnectionCache]:
    kept = ImapConnectionCache()
    yield kept
    kept.close_all()


def _source(store: MailStore, dovecot: DovecotServer, user: str) -> SourceInfo:
    return add_imap_source(store, port=dovecot.imap_port, username=user, password="pw")


def test_the_next_sync_reuses_the_kept_connection(
    sqlite_store: MailStore, dovecot_module: DovecotServer, cache: ImapConnectionCache
) -> None:
    source = _source(sqlite_store, dovecot_module, "reuse")
    assert _two_syncs(sqlite_store, source, dovecot_module, cache).logins == 1
    cache.close_all()
    assert len(cache) == 0


def test_a_connection_the_server_dropped_is_replaced(
    sqlite_store: MailStore, dovecot_module: DovecotServer, cache: ImapConnectionCache
) -> None:
    source = _source(sqlite_store, dovecot_module, "kicked")
    kick = partial(dovecot_module.doveadm, "kick", "kicked")
    assert _two_syncs(sqlite_store, source, dovecot_module, cache, kick).logins == 2


def test_an_idle_connection_past_its_limit_is_replaced(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    source = _source(sqlite_store, dovecot_module, "stale")
    short = ImapConnectionCache(max_idle_seconds=0.0)
    try:
        assert _two_syncs(sqlite_store, source, dovecot_module, short).logins == 2
    finally:
        short.close_all()


def test_changed_source_settings_open_a_new_connection(
    sqlite_store: MailStore, dovecot_module: DovecotServer, cache: ImapConnectionCache
) -> None:
    source = _source(sqlite_store, dovecot_module, "changed")
    logins = CountingLogins()
    sync_imap_source(sqlite_store, source, authenticator=logins, connections=cache)
    changed = dataclasses.replace(source, options={**source.options, "timeout_seconds": 11})
    sync_imap_source(sqlite_store, changed, authenticator=logins, connections=cache)
    assert logins.logins == 2


def test_keep_after_close_all_logs_out_at_once(
    sqlite_store: MailStore, dovecot_module: DovecotServer, cache: ImapConnectionCache
) -> None:
    source = _source(sqlite_store, dovecot_module, "closed")
    cache.close_all()
    sync_imap_source(sqlite_store, source, connections=cache)
    assert len(cache) == 0


def test_connections_of_removed_sources_are_logged_out(
    sqlite_store: MailStore, dovecot_module: DovecotServer, cache: ImapConnectionCache
) -> None:
    source = _source(sqlite_store, dovecot_module, "closed")
    sync_imap_source(sqlite_store, source, connections=cache)
    cache.retain({source.id})
    assert len(cache) == 1
    cache.retain(set())
    assert len(cache) == 0
