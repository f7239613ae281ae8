"""Alembic migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.migrations import alembic_config, current_revision, upgrade_database
from gateway.store.models import SQLModel


def test_migrations_match_models_and_are_idempotent(backend_settings: Settings) -> None:
    url = backend_settings.resolved_database_url()
    backend_settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(url)
    upgrade_database(url)  # a second run is a no-op
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None and current_revision(url) == head
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
            state = connection.execute(text("SELECT next_uidvalidity FROM server_state")).all()
            assert len(state) == 1 and state[0][0] > 1_700_000_000
    finally:
        engine.dispose()


def test_search_text_moves_to_its_own_table_and_back(backend_settings: Settings) -> None:
    """0004 carries every message's search text over, and its downgrade brings it back."""
    url = backend_settings.resolved_database_url()
    store = open_store(backend_settings)
    try:
        user = store.create_user(name="mover", password="pw")
        inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
        raw = b"Subject: moving day\r\nX-Tag: kept-header\r\n\r\nthe needle is here\r\n"
        message_id = store.append_message(mailbox_id=inbox, content=raw).message_id
    finally:
        store.close()
    command.downgrade(alembic_config(url), "0003")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            body, header = connection.execute(
                text("SELECT body_text, header_text FROM messages WHERE id = :id"),
                {"id": message_id},
            ).one()
            assert "needle" in body and "kept-header" in header
    finally:
        engine.dispose()
    upgrade_database(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("messages")}
            assert not columns & {"header_text", "body_text", "body_text_truncated"}
            indexes = {index["name"] for index in inspect(connection).get_indexes("messages")}
            assert "ix_messages_search_pending" in indexes
    finally:
        engine.dispose()
    store = open_store(backend_settings)
    try:
        fields = store.search_message_fields(
            message_ids=[message_id], fields=["body_text", "header_text", "subject"]
        )[message_id]
        assert fields.body_text is not None and "needle" in fields.body_text
        assert fields.header_text is not None and "kept-header" in fields.header_text
        assert fields.subject == "moving day"
    finally:
        store.close()


def test_a_failed_sqlite_migration_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each migration is one transaction on SQLite too, DDL included: 0004 failing after its
    CREATE TABLE (here: an SQLite too old to drop columns) can simply be run again."""
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade_database(url, "0003")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(RuntimeError, match="too old"):
        upgrade_database(url)
    assert current_revision(url) == "0003"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert "message_texts" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()
    monkeypatch.undo()
    upgrade_database(url)
    assert (
        current_revision(url) == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    )


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once_and_create_one_first_admin(
    tmp_path: Path,
) -> None:
    """Three `gateway serve` replicas on one fresh PostgreSQL database: the advisory lock makes
    the others wait for the first one's migration, and only one creates the first admin."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tests.support.fixtures_store import PostgresDatabase, make_settings

    with PostgresDatabase() as url:
        # Processes, as replicas are: Alembic's command API is not thread-safe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(3, mp_context=context) as pool:
            created = list(
                pool.map(_start_replica, [tmp_path / f"replica{n}" for n in range(3)], [url] * 3)
            )
        assert created.count(True) == 1
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert current_revision(url) == head
        store = open_store(make_settings(tmp_path / "check", url), migrate=False)
        try:
            (admin,) = store.list_users()
            assert admin.name == "admin" and admin.is_admin
            assert store.authenticate_user(name="admin", password="operator-chosen-pw") is not None
        finally:
            store.close()


def _start_replica(data_dir: Path, url: str) -> bool:
    """What `gateway serve` does first: open (migrate) the store, create the first admin."""
    from gateway.bootstrap import create_first_admin
    from tests.support.fixtures_store import make_settings

    store = open_store(make_settings(data_dir, url))
    try:
        return create_first_admin(store, password="operator-chosen-pw") is not None
    finally:
        store.close()


def test_subscriptions_move_to_their_own_table_and_back(backend_settings: Settings) -> None:
    """0010 keeps every subscription, and its downgrade folds them back into `mailboxes`."""
    url = backend_settings.resolved_database_url()
    backend_settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(url, "0004")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (name, password_hash, is_admin, dedupe_across_sources,"
                    " created_at) VALUES ('sub', 'x', false, true, CURRENT_TIMESTAMP)"
                )
            )
            user_id = connection.execute(text("SELECT id FROM users")).scalar_one()
            for number, (name, subscribed) in enumerate([("INBOX", True), ("Junk", False)]):
                connection.execute(
                    text(
                        "INSERT INTO mailboxes (user_id, name, uidvalidity, uidnext,"
                        " highestmodseq, subscribed, created_at) VALUES (:user, :name, :v, 1, 1,"
                        " :subscribed, CURRENT_TIMESTAMP)"
                    ),
                    {"user": user_id, "name": name, "v": number + 1, "subscribed": subscribed},
                )
        upgrade_database(url)
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM subscriptions")).scalars().all()
            assert names == ["INBOX"]
        command.downgrade(alembic_config(url), "0009")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT name, subscribed FROM mailboxes ORDER BY name")
            ).all()
            assert [(name, bool(flag)) for name, flag in rows] == [("INBOX", True), ("Junk", False)]
    finally:
        engine.dispose()
