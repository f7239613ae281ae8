"""An admin app on a real SQLite store, driven through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.admin.app import create_app
from gateway.admin.sessions import CSRF_HEADER
from gateway.settings import Settings
from gateway.store import MailStore, open_store
from tests.support.fixtures_store import make_settings

ADMIN_PASSWORD = "admin-pw-Secret-1"
ALICE_PASSWORD = "alice-pw-Secret-2"
BOB_PASSWORD = "bob-pw-Secret-3"


@dataclass
class RecordingScheduler:
    """Stands in for FetchScheduler.request_sync (the real one runs in the browser test)."""

    requests: list[tuple[int, str]] = field(default_factory=list)

    def request_sync(self, source_id: int, *, reason: str) -> None:
        self.requests.append((source_id, reason))


@dataclass
class AdminHarness:
    store: MailStore
    settings: Settings
    scheduler: RecordingScheduler
    client_for: object

    def client(self, address: str = "testclient") -> TestClient:
        return self.client_for(address)  # type: ignore[operator, no-any-return]

    def login(self, name: str, password: str) -> TestClient:
        """A client logged in as `name`, sending the CSRF header like the panel does."""
        client = self.client()
        response = client.post("/api/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        client.headers[CSRF_HEADER] = response.json()["csrf_token"]
        return client


@pytest.fixture
def admin_harness(tmp_path: Path) -> Iterator[AdminHarness]:
    settings = make_settings(tmp_path / "data")
    store = open_store(settings)
    store.create_user(name="root", password=ADMIN_PASSWORD, is_admin=True)
    store.create_user(name="alice", password=ALICE_PASSWORD)
    store.create_user(name="bob", password=BOB_PASSWORD)
    scheduler = RecordingScheduler()
    app = create_app(store, settings, scheduler=scheduler)
    clients: list[TestClient] = []

    def make_client(address: str) -> TestClient:
        client = TestClient(app, base_url="http://127.0.0.1", client=(address, 50000))
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield AdminHarness(store, settings, scheduler, make_client)
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        store.close()
