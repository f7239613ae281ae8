"""/metrics: open like the probes by default; with GATEWAY_METRICS_TOKEN set, only for a
scraper presenting it as a bearer token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.admin.app import create_app
from gateway.settings import Settings
from gateway.store import open_store
from tests.admin.conftest import AdminHarness
from tests.support.fixtures_store import make_settings

METRICS_TOKEN = "Metrics-Token-Value-7"


def test_metrics_are_open_without_a_token_setting(admin_harness: AdminHarness) -> None:
    response = admin_harness.client().get("/metrics")
    assert response.status_code == 200 and "gateway_sources" in response.text


def test_metrics_token_is_required_when_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", metrics_token=METRICS_TOKEN)
    store = open_store(settings)
    try:
        with TestClient(create_app(store, settings), base_url="http://127.0.0.1") as client:
            missing = client.get("/metrics")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            assert METRICS_TOKEN not in missing.text
            wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            basic = client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
            assert basic.status_code == 401
            right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert right.status_code == 200 and "gateway_outbound_queue_depth" in right.text
            # The probes stay open for Kubernetes.
            assert client.get("/healthz").status_code == 200
    finally:
        store.close()


def test_metrics_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_METRICS_TOKEN", METRICS_TOKEN)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == METRICS_TOKEN
    assert METRICS_TOKEN not in repr(settings)
