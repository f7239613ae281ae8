"""Connecting an account through the admin API: the provider from the operator's settings
(OpenID discovery), the authorization-code flow with PKCE and state through the real
oidc-provider, the callback creating the source, then a sync over XOAUTH2; a revoked grant
shows as "reconnect needed" and reconnecting clears it. No token is ever in an API answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from gateway.admin.app import create_app
from gateway.admin.sessions import CSRF_HEADER
from gateway.fetch.errors import SyncError
from gateway.fetch.runner import run_source_sync
from gateway.store import MailStore, open_store
from tests.support.fixtures_oauth2 import OAUTH2_USER, OAuth2Peers
from tests.support.fixtures_store import make_settings

pytestmark = pytest.mark.system
PASSWORD = "owner-pw-Secret-1"
BASE = "http://127.0.0.1"
CALLBACK = f"{BASE}/api/oauth2/callback"


@pytest.fixture
def panel(tmp_path: Path, oauth2_peers: OAuth2Peers) -> Iterator[tuple[TestClient, MailStore]]:
    oauth2 = {
        name.removeprefix("GATEWAY_").lower(): value
        for name, value in oauth2_peers.gateway_env().items()
    }
    settings = make_settings(tmp_path / "data", **oauth2)
    store = open_store(settings)
    store.create_user(name="owner", password=PASSWORD)
    with TestClient(create_app(store, settings), base_url=BASE) as client:
        response = client.post("/api/login", json={"username": "owner", "password": PASSWORD})
        client.headers[CSRF_HEADER] = response.json()["csrf_token"]
        yield client, store
    store.close()


def _connect(client: TestClient, peers: OAuth2Peers, **body: object) -> str:
    started = client.post("/api/oauth2/connect", json={"provider": "generic", **body})
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    assert query["redirect_uri"] == [CALLBACK] and query["prompt"] == ["consent"]
    back = peers.provider.follow(url, CALLBACK)
    done = client.get(back.removeprefix(BASE), follow_redirects=False)
    assert done.status_code == 303
    return str(done.headers["location"])


def test_connect_creates_a_source_that_syncs(
    panel: tuple[TestClient, MailStore],
    oauth2_peers: OAuth2Peers,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client, store = panel
    providers = client.get("/api/oauth2/providers").json()
    assert providers == [{"name": "generic", "title": "Test provider", "protocols": ["imap"]}]
    assert _connect(client, oauth2_peers, name="work") == "/#/oauth2?connected=work"
    (source,) = client.get("/api/sources").json()
    assert source["auth_method"] == "oauth2" and source["oauth_provider"] == "generic"
    assert source["username"] == OAUTH2_USER and source["port"] == oauth2_peers.dovecot.imap_port
    grant = store.read_oauth_grant(source_id=source["id"])
    listing = client.get("/api/sources").text
    assert grant.refresh_token not in listing and str(grant.access_token) not in listing
    oauth2_peers.dovecot.load_maildir(
        OAUTH2_USER, "INBOX", [b"From: a@example.test\r\nSubject: s\r\n\r\nbody\r\n"]
    )
    assert run_source_sync(store, store.get_source_by_id(source_id=source["id"])).fetched == 1
    tested = client.post(f"/api/sources/{source['id']}/test").json()
    assert tested["ok"] is True, tested
    # DESIGN invariant 7: no token in the logs or in the database file in plaintext.
    grant = store.read_oauth_grant(source_id=source["id"])
    secrets = [grant.refresh_token, str(grant.access_token)]
    # The main file and its write-ahead log: a fresh row may still be only in the latter.
    database = b"".join(path.read_bytes() for path in (tmp_path / "data").glob("gateway.sqlite3*"))
    assert len(database) > 10_000
    assert all(secret not in caplog.text for secret in secrets)
    assert all(secret.encode() not in database for secret in secrets)


def test_revoked_grant_shows_reconnect_needed_until_reconnected(
    panel: tuple[TestClient, MailStore], oauth2_peers: OAuth2Peers
) -> None:
    client, store = panel
    _connect(client, oauth2_peers)
    (source,) = client.get("/api/sources").json()
    oauth2_peers.provider.revoke(store.read_oauth_grant(source_id=source["id"]).refresh_token)
    with pytest.raises(SyncError):
        run_source_sync(store, store.get_source_by_id(source_id=source["id"]))
    (failed,) = client.get("/api/sources").json()
    assert failed["status"]["state"] == "reconnect_needed"
    assert _connect(client, oauth2_peers, source_id=source["id"]).startswith("/#/oauth2?connected")
    (again,) = client.get("/api/sources").json()
    assert again["status"]["state"] != "reconnect_needed" and again["id"] == source["id"]
    assert run_source_sync(store, store.get_source_by_id(source_id=source["id"])).fetched == 0


def test_callback_without_the_sealed_cookie_or_with_another_state_is_refused(
    panel: tuple[TestClient, MailStore], oauth2_peers: OAuth2Peers
) -> None:
    client, store = panel
    started = client.post("/api/oauth2/connect", json={"provider": "generic"}).json()
    back = oauth2_peers.provider.follow(started["authorization_url"], CALLBACK)
    forged = back.replace("state=", "state=x")
    refused = client.get(forged.removeprefix(BASE), follow_redirects=False)
    assert refused.headers["location"].startswith("/#/oauth2?error=")
    stranger = TestClient(client.app, base_url=BASE)
    expired = stranger.get(back.removeprefix(BASE), follow_redirects=False)
    assert "expired" in expired.headers["location"]
    assert store.list_sources() == []
