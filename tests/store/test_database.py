"""How the store sets up each SQLite connection."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.store import MailStore
from gateway.store.database import SQLITE_MMAP_BYTES
from gateway.store.mailboxes import _MAILBOX_BY_NAME


def test_sqlite_connections_are_durable_and_read_through_a_memory_map(
    sqlite_store: MailStore,
) -> None:
    with sqlite_store.database.single_read() as connection:
        pragmas = {
            name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "synchronous", "foreign_keys", "mmap_size")
        }
    # synchronous 2 is FULL: every commit fsyncs the WAL
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "mmap_size": SQLITE_MMAP_BYTES,
    }


def test_a_raw_read_returns_its_connection_with_no_transaction_open(store: MailStore) -> None:
    """`raw_read` must not leave a transaction open behind it (on PostgreSQL a connection
    would hold its snapshot; SQLite's connections run in autocommit outside `write`)."""
    user = store.create_user(name="reader", password="pw")
    with store.database.raw_read() as connection:
        rows = store.database.raw_query(_MAILBOX_BY_NAME).run(
            connection, {"user_id": user.id, "name": "INBOX"}
        )
        pooled = connection.connection if isinstance(connection, Connection) else connection
        driver = pooled.driver_connection
    assert [row[2] for row in rows] == ["INBOX"]
    if isinstance(driver, sqlite3.Connection):
        assert driver.isolation_level is None
        assert not driver.in_transaction
    else:
        assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_flag_and_expunge_writes_commit_without_waiting_for_the_disk(store: MailStore) -> None:
    """`write(durable=False)` (flags, expunges) skips the commit fsync; every other write
    keeps it, on the same pooled connection too (imaptest stress: the fsync per STORE was
    what serialised concurrent writers)."""
    database = store.database
    if database.is_sqlite:
        query, lazy, durable = "PRAGMA synchronous", 1, 2  # NORMAL, FULL
    else:
        query, lazy, durable = "SHOW synchronous_commit", "off", "on"
    for _ in range(2):
        with database.write(durable=False) as session:
            assert session.execute(text(query)).scalar() == lazy
        with database.write() as session:
            assert session.execute(text(query)).scalar() == durable
