"""POP3 sync against a real Dovecot: initial, incremental, retention, bytes identical."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.fetch import source_keyword, sync_pop3_source
from gateway.fetch.errors import SyncError
from gateway.fetch.runner import run_source_sync
from gateway.store import MailStore
from tests.fetch.helpers import add_pop3_source, digests, inbox_contents, pop3_wire_form
from tests.support.corpus import generate_corpus, malformed_corpus
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.system
# Dovecot notices a rewritten passwd-file by its mtime (1 s resolution), so every account the
# module needs is added before the first login.
USERS = [
    ("bulk", "pw-bulk"),
    ("inc", "pw"),
    ("del", "pw"),
    ("days", "pw"),
    ("keep", "pw"),
    ("auth", "right"),
]


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    for name, password in USERS:
        dovecot_module.add_user(name, password)


def _maildir_messages(dovecot_module: DovecotServer, user: str) -> list[bytes]:
    root = dovecot_module.maildir_path(user)
    return [path.read_bytes() for sub in ("cur", "new") for path in (root / sub).iterdir()]


def _numbered(count: int, start: int = 0) -> list[bytes]:
    return [
        f"From: n{n}@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@t>\r\n\r\n"
        f".leading dot line {n}\r\n..two dots\r\nbody {n}\r\n".encode()
        for n in range(start, start + count)
    ]


def test_initial_sync_of_2000_varied_messages_is_exact(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    corpus = list(generate_corpus(2000, seed=4, max_size=300_000))
    corpus += [raw for _, raw in malformed_corpus() if raw]
    dovecot_module.load_maildir("bulk", "INBOX", corpus)
    source = add_pop3_source(
        sqlite_store, port=dovecot_module.pop3_port, username="bulk", password="pw-bulk"
    )

    started = time.monotonic()
    report = sync_pop3_source(sqlite_store, source)
    elapsed = time.monotonic() - started
    print(
        f"\nPOP3 initial sync: {len(corpus)} messages in {elapsed:.2f}s "
        f"= {len(corpus) / elapsed:.0f} msg/s, {report.bytes / elapsed / 1e6:.1f} MB/s"
    )

    assert report.fetched == len(corpus) and report.pipelined and not report.content_keyed
    stored = inbox_contents(sqlite_store)
    assert len(stored) == len(corpus)
    # What Dovecot holds, in the form it serves it, equals what the store serves.
    expected = [pop3_wire_form(raw) for raw in _maildir_messages(dovecot_module, "bulk")]
    assert digests([content for content, _ in stored]) == digests(expected)
    keyword = source_keyword("isp")
    assert all(keywords == {keyword} for _, keywords in stored)
    assert len(_maildir_messages(dovecot_module, "bulk")) == len(corpus), "keep is the default"
    # Stored before its search text was decoded (gateway serve's indexer does that after).
    assert sqlite_store.count_pending_search_text() > len(corpus) // 2


def test_incremental_sync_fetches_only_new_mail(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    dovecot_module.load_maildir("inc", "INBOX", _numbered(10))
    source = add_pop3_source(
        sqlite_store, port=dovecot_module.pop3_port, username="inc", password="pw"
    )
    assert sync_pop3_source(sqlite_store, source).fetched == 10
    dovecot_module.load_maildir("inc", "INBOX", _numbered(5, start=10))
    second = sync_pop3_source(sqlite_store, source)
    assert (second.fetched, second.already_stored) == (5, 10)
    third = sync_pop3_source(sqlite_store, source)
    assert (third.fetched, third.bytes, third.deleted) == (0, 0, 0)
    stored = [content for content, _ in inbox_contents(sqlite_store)]
    assert digests(stored) == digests(_numbered(15))
    # Dot-stuffed lines came back unstuffed, CRLF intact.
    assert stored[0].endswith(b"\r\n.leading dot line 0\r\n..two dots\r\nbody 0\r\n")


def test_delete_after_download_empties_the_server(
    store: MailStore, dovecot_module: DovecotServer
) -> None:
    dovecot_module.load_maildir("del", "INBOX", _numbered(30))
    source = add_pop3_source(
        store,
        port=dovecot_module.pop3_port,
        username="del",
        password="pw",
        options={"retention": "delete_after_download"},
    )
    report = run_source_sync(store, source)
    assert (report.fetched, report.deleted) == (30, 30)
    assert _maildir_messages(dovecot_module, "del") == []
    assert digests([c for c, _ in inbox_contents(store)]) == digests(_numbered(30))
    state = store.get_source(user_name="alice", name="isp")
    assert state.messages_fetched == 30 and state.consecutive_failures == 0
    assert state.last_success_at is not None and state.last_error is None
    again = sync_pop3_source(store, source)
    assert (again.listed, again.fetched) == (0, 0)


def test_delete_after_days_uses_the_first_store_time(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    dovecot_module.load_maildir("days", "INBOX", _numbered(4))
    source = add_pop3_source(
        sqlite_store,
        port=dovecot_module.pop3_port,
        username="days",
        password="pw",
        options={"retention": "delete_after_days", "retention_days": 7},
    )
    now = datetime.now(UTC)
    assert sync_pop3_source(sqlite_store, source, now=now).deleted == 0
    dovecot_module.load_maildir("days", "INBOX", _numbered(2, start=4))
    six_days = sync_pop3_source(sqlite_store, source, now=now + timedelta(days=6))
    assert (six_days.fetched, six_days.deleted) == (2, 0)
    assert len(_maildir_messages(dovecot_module, "days")) == 6
    # Eight days on, only the four stored then are old enough; the two new ones are not.
    later = sync_pop3_source(sqlite_store, source, now=datetime.now(UTC) + timedelta(days=7.5))
    assert (later.fetched, later.deleted) == (0, 6)
    assert _maildir_messages(dovecot_module, "days") == []
    assert len(inbox_contents(sqlite_store)) == 6


def test_keep_never_deletes(sqlite_store: MailStore, dovecot_module: DovecotServer) -> None:
    dovecot_module.load_maildir("keep", "INBOX", _numbered(3))
    source = add_pop3_source(
        sqlite_store,
        port=dovecot_module.pop3_port,
        username="keep",
        password="pw",
        options={"retention": "keep"},
    )
    sync_pop3_source(sqlite_store, source, now=datetime.now(UTC) + timedelta(days=3650))
    assert len(_maildir_messages(dovecot_module, "keep")) == 3


def test_wrong_password_is_an_auth_error_recorded_on_the_source(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    dovecot_module.load_maildir("auth", "INBOX", _numbered(2))
    source = add_pop3_source(
        sqlite_store, port=dovecot_module.pop3_port, username="auth", password="wrong-Secret-77"
    )
    with pytest.raises(SyncError) as caught:
        run_source_sync(sqlite_store, source)
    assert caught.value.error_class == "auth"
    state = sqlite_store.get_source(user_name="alice", name="isp")
    assert state.last_error_class == "auth" and state.consecutive_failures == 1
    assert "wrong-Secret-77" not in (state.last_error or "")
    assert state.next_run_at is not None and state.next_run_at > datetime.now(UTC)
    assert inbox_contents(sqlite_store) == []
