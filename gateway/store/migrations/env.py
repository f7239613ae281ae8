"""Alembic environment: migrates the URL set by `gateway.store.migrations.alembic_config`."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, create_engine, event, pool, text
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel

from gateway.store import models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata
# Replicas starting together on one PostgreSQL database migrate one at a time: the first holds
# this transaction-scoped advisory lock while it migrates, the others then find the schema at
# head and do nothing. (Any constant works; this one is "mgw" in ASCII.)
_MIGRATION_LOCK = 0x6D6777


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None  # noqa: S101
    engine = create_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        _transactional_sqlite(engine)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things in place; batch mode copies the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            transactional_ddl=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": _MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


def _transactional_sqlite(engine: Engine) -> None:
    """Run each migration in one SQLite transaction, DDL included: pysqlite opens transactions
    only before INSERT/UPDATE/DELETE, so a failed migration would leave its CREATE TABLE behind
    and every retry would fail on it."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


run_migrations()
