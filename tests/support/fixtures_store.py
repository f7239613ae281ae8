"""Fixtures that build a real store on SQLite (temp dir) and on the local PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from gateway.settings import Settings
from gateway.store import MailStore, open_store

POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


class PostgresDatabase:
    """A throw-away database on the local PostgreSQL (trust auth), dropped on exit."""

    def __init__(self) -> None:
        self.name = f"gw_test_{secrets.token_hex(6)}"

    def __enter__(self) -> str:
        try:
            with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        except psycopg.OperationalError as error:
            raise RuntimeError(
                "PostgreSQL is required at 127.0.0.1:5432 with trust auth for user postgres "
                f"(start it with pg_ctlcluster): {error}"
            ) from error
        return POSTGRES_URL.format(name=self.name)

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield make_settings(tmp_path / "data")
        return
    with PostgresDatabase() as url:
        yield make_settings(tmp_path / "data", url)


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[MailStore]:
    mail_store = open_store(backend_settings)
    try:
        yield mail_store
    finally:
        mail_store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MailStore]:
    mail_store = open_store(make_settings(tmp_path / "data"))
    try:
        yield mail_store
    finally:
        mail_store.close()
