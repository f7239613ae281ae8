"""Faults a POP3 source can throw at us: each gives a clear, classified error recorded on the
source, stores nothing twice, and a later retry completes."""

from __future__ import annotations

import hashlib
import ssl
import time
from pathlib import Path

import pytest

from gateway.fetch import SyncError, sync_pop3_source
from gateway.fetch.runner import run_source_sync
from gateway.store import MailStore
from gateway.tls import ensure_certificate, server_context
from tests.fetch.fake_pop3 import FakePop3Config, fake_pop3
from tests.fetch.helpers import add_pop3_source, digests, inbox_contents
from tests.support.dovecot import free_port
from tests.support.fixtures_store import make_settings


def _messages(count: int) -> list[bytes]:
    return [
        f"Subject: fault {n}\r\nMessage-ID: <f{n}@t>\r\n\r\n{'line ' * 50}\r\n.dot {n}\r\n".encode()
        for n in range(count)
    ]


def _certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext, str]:
    cert, key = ensure_certificate(make_settings(tmp_path / "tls-data"))
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return cert, server_context(cert, key), hashlib.sha256(der).hexdigest()


def _state(store: MailStore) -> tuple[str | None, int]:
    source = store.get_source(user_name="alice", name="isp")
    return source.last_error_class, source.consecutive_failures


def test_server_without_uidl_falls_back_to_content_keys(sqlite_store: MailStore) -> None:
    messages = [*_messages(6), _messages(1)[0]]  # an exact repeat is still fetched, once
    config = FakePop3Config(messages=messages, uidl=False, pipelining=False)
    with fake_pop3(config) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            options={"retention": "delete_after_download"},
        )
        server.add(b"Subject: late\r\n\r\nlate\r\n")
        first = sync_pop3_source(sqlite_store, source)
        assert first.content_keyed and first.fetched == 8 and first.deleted == 8
        assert server.remaining() == []
        server.add(b"Subject: later\r\n\r\nlater\r\n")
        assert sync_pop3_source(sqlite_store, source).fetched == 1
    stored = [content for content, _ in inbox_contents(sqlite_store)]
    expected = [*messages, b"Subject: late\r\n\r\nlate\r\n", b"Subject: later\r\n\r\nlater\r\n"]
    assert digests(stored) == digests(expected)


def test_no_uidl_and_keep_never_refetches(sqlite_store: MailStore) -> None:
    with fake_pop3(FakePop3Config(messages=_messages(5), uidl=False)) as server:
        source = add_pop3_source(sqlite_store, port=server.port, username="user", password="pass")
        assert sync_pop3_source(sqlite_store, source).fetched == 5
        assert sync_pop3_source(sqlite_store, source).fetched == 0
    assert len(inbox_contents(sqlite_store)) == 5


@pytest.mark.parametrize("pipelining", [True, False])
def test_connection_dropped_mid_retr_then_retry_completes(
    sqlite_store: MailStore, pipelining: bool
) -> None:
    messages = _messages(40)
    config = FakePop3Config(messages=messages, pipelining=pipelining, drop_retr=(25, 200))
    with fake_pop3(config) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            options={"retention": "delete_after_download"},
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "connect"
        assert _state(sqlite_store) == ("connect", 1)
        assert len(server.remaining()) == 40, "no QUIT, so nothing was deleted"
        stored_before = len(inbox_contents(sqlite_store))
        retr_before = server.retr_count
        retry = run_source_sync(sqlite_store, source)
        # Resumed: only what was not yet durable is fetched again.
        assert retry.fetched == 40 - stored_before
        assert server.retr_count - retr_before == retry.fetched
        assert server.remaining() == []
    assert _state(sqlite_store) == (None, 0)
    assert digests([c for c, _ in inbox_contents(sqlite_store)]) == digests(messages)


def test_server_that_never_answers_times_out(sqlite_store: MailStore) -> None:
    with fake_pop3(FakePop3Config(hang_after_greeting=True)) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            options={"timeout_seconds": 1},
        )
        started = time.monotonic()
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert time.monotonic() - started < 5
    assert caught.value.error_class == "timeout"
    assert _state(sqlite_store) == ("timeout", 1)


def test_nothing_listening_is_a_connect_error(sqlite_store: MailStore) -> None:
    source = add_pop3_source(sqlite_store, port=free_port(), username="u", password="p")
    with pytest.raises(SyncError) as caught:
        run_source_sync(sqlite_store, source)
    assert caught.value.error_class == "connect"
    assert _state(sqlite_store) == ("connect", 1)


def test_untrusted_certificate_is_a_tls_error_until_trusted(
    sqlite_store: MailStore, tmp_path: Path
) -> None:
    cert, context, fingerprint = _certificate(tmp_path)
    with fake_pop3(FakePop3Config(messages=_messages(3), implicit_tls=context)) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            security="tls",
            options={"allow_plaintext": False},
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "tls" and "certificate" in caught.value.message
        assert server.logins == 0, "no credentials sent to an untrusted server"
        assert _state(sqlite_store) == ("tls", 1)

        trusted = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            security="tls",
            name="by-ca",
            options={"tls_ca_file": str(cert)},
        )
        assert run_source_sync(sqlite_store, trusted).fetched == 3
        pinned = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            security="tls",
            name="by-pin",
            options={"tls_fingerprint_sha256": fingerprint},
        )
        # Trusted, logged in and listed; the three messages are the ones the first source
        # already brought into this user's INBOX, so cross-source dedup stores none again.
        by_pin = run_source_sync(sqlite_store, pinned)
        assert (by_pin.listed, by_pin.fetched, by_pin.already_stored) == (3, 0, 3)
        wrong_pin = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            security="tls",
            name="bad-pin",
            options={"tls_fingerprint_sha256": "00" * 32},
        )
        logins = server.logins
        with pytest.raises(SyncError) as mismatch:
            run_source_sync(sqlite_store, wrong_pin)
        assert mismatch.value.error_class == "tls" and "pinned" in mismatch.value.message
        assert server.logins == logins


def test_starttls_upgrades_before_login(sqlite_store: MailStore, tmp_path: Path) -> None:
    cert, context, _ = _certificate(tmp_path)
    with fake_pop3(FakePop3Config(messages=_messages(2), stls=context)) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            security="starttls",
            options={"tls_ca_file": str(cert)},
        )
        assert run_source_sync(sqlite_store, source).fetched == 2
    with fake_pop3(FakePop3Config(messages=_messages(2))) as plain:
        source = add_pop3_source(
            sqlite_store,
            port=plain.port,
            username="user",
            password="pass",
            security="starttls",
            name="no-stls",
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "tls" and plain.logins == 0


def test_plaintext_needs_an_explicit_option(sqlite_store: MailStore) -> None:
    with fake_pop3(FakePop3Config(messages=_messages(1))) as server:
        source = add_pop3_source(
            sqlite_store,
            port=server.port,
            username="user",
            password="pass",
            options={"allow_plaintext": False},
        )
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "plaintext" and server.logins == 0


def test_auth_failure_on_fake_server_then_fixed_password(sqlite_store: MailStore) -> None:
    with fake_pop3(FakePop3Config(messages=_messages(2))) as server:
        source = add_pop3_source(sqlite_store, port=server.port, username="user", password="nope")
        with pytest.raises(SyncError) as caught:
            run_source_sync(sqlite_store, source)
        assert caught.value.error_class == "auth" and "nope" not in str(caught.value)
