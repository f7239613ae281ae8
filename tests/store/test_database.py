"""How the store sets up each SQLite connection."""

from __future__ import annotations

from sqlalchemy import text

from gateway.store import MailStore
from gateway.store.database import SQLITE_MMAP_BYTES


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
