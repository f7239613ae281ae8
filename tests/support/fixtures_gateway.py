"""Fixtures that run our IMAP server for client tests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fixtures_store import PostgresDatabase
from tests.support.gateway_server import RunningGateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    """Our IMAP server on SQLite with user alice."""
    with RunningGateway(tmp_path / "data") as running:
        running.add_user()
        yield running


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    """Our IMAP server with user alice, once per database backend."""
    if request.param == "sqlite":
        with RunningGateway(tmp_path / "data") as running:
            running.add_user()
            yield running
        return
    with PostgresDatabase() as url, RunningGateway(tmp_path / "data", url) as running:
        running.add_user()
        yield running
