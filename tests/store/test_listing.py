"""The CLI's listing reader (bare sqlite3/psycopg) returns exactly what `MailStore` returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.settings import Settings
from gateway.store import MailStore, NotFoundError, open_store
from gateway.store.listing import open_listing_reader
from tests.support.fixtures_store import make_settings


def _populate(store: MailStore) -> None:
    lena = store.create_user(name="lena", password="pw", is_admin=True)
    bob = store.create_user(name="bob", password="pw")
    now = datetime(2026, 12, 8, 3, 4, 5, 678901, tzinfo=UTC)
    work = store.add_source(
        user_id=lena.id,
        name="work",
        protocol="imap",
        host="imap.example.org",
        port=993,
        security="tls",
        username="lena@example.org",
        secret="s1",
        options={"folders": ["INBOX", "Work"], "push": False},
    )
    store.record_sync_failure(
        work.id, error_class="auth", message="login refused", now=now, next_run_at=None
    )
    home = store.add_source(
        user_id=lena.id,
        name="home",
        protocol="pop3",
        host="pop.example.org",
        port=995,
        security="tls",
        username="lena",
        secret="s2",
        poll_interval=300,
    )
    store.record_sync_success(
        home.id, fetched=12, bytes=34567, now=now, next_run_at=now + timedelta(seconds=300)
    )
    store.record_unpropagated_removals(source_id=home.id, count=2)
    store.add_identity(user_id=lena.id, address="lena@work.example", source_id=work.id)
    store.add_identity(
        user_id=lena.id,
        address="info@example.org",
        display_name="Lena's shop",
        is_default=True,
        relay_host="smtp.example.org",
        relay_port=465,
        relay_security="tls",
        relay_username="info",
        relay_secret="relay-pw",
        relay_options={"timeout_seconds": 20},
        save_to_source_sent=True,
    )
    store.update_source(
        source_id=store.add_source(
            user_id=bob.id,
            name="old",
            protocol="imap",
            host="mail.example.net",
            port=143,
            security="starttls",
            username="bob",
            secret="s3",
        ).id,
        enabled=False,
    )


def test_reader_returns_what_the_store_returns(backend_settings: Settings) -> None:
    store = open_store(backend_settings)
    try:
        _populate(store)
        reader = open_listing_reader(backend_settings)
        assert reader is not None, "a migrated database is read without the ORM"
        try:
            users = store.list_users()
            assert [u.name for u in users] == ["bob", "lena"]
            assert reader.list_users() == users
            lena = reader.get_user(name="lena")
            assert lena == store.get_user(name="lena")
            assert lena.created_at.tzinfo is UTC
            sources = store.list_sources()
            assert len(sources) == 3
            assert sources[1].last_attempt_at is not None  # the states differ per source
            assert reader.list_sources() == sources
            assert reader.list_sources(user_id=lena.id) == store.list_sources(user_id=lena.id)
            identities = store.list_identities(user_id=lena.id)
            assert {i.has_relay_secret for i in identities} == {True, False}
            assert reader.list_identities(user_id=lena.id) == identities
            with pytest.raises(NotFoundError, match="no such user: nobody"):
                reader.get_user(name="nobody")
        finally:
            reader.close()
    finally:
        store.close()


def test_reader_leaves_an_outdated_schema_to_the_store(backend_settings: Settings) -> None:
    store = open_store(backend_settings)
    try:
        with store.database.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    finally:
        store.close()
    assert open_listing_reader(backend_settings) is None


def test_reader_does_not_create_a_missing_sqlite_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    (tmp_path / "data").mkdir()
    assert open_listing_reader(settings) is None
    assert list((tmp_path / "data").iterdir()) == []
