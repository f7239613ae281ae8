"""Admin API: login, sessions, CSRF, throttling, API tokens, users and who may do what."""

from __future__ import annotations

import logging

import pytest

from gateway.admin.sessions import CSRF_HEADER, SESSION_COOKIE
from tests.admin.conftest import ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, AdminHarness


def test_login_sets_a_strict_httponly_cookie_and_returns_the_csrf_token(
    admin_harness: AdminHarness,
) -> None:
    client = admin_harness.client()
    response = client.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["name"] == "alice" and body["user"]["is_admin"] is False
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure is set when served over TLS
    client.headers[CSRF_HEADER] = body["csrf_token"]
    assert client.get("/api/session").json()["user"]["name"] == "alice"
    assert client.post("/api/logout").status_code == 204
    assert client.get("/api/session").status_code == 401


def test_cookie_is_secure_over_tls(admin_harness: AdminHarness) -> None:
    client = admin_harness.client()
    client.base_url = client.base_url.copy_with(scheme="https")
    response = client.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD})
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_401_and_everything_needs_a_login(admin_harness: AdminHarness) -> None:
    client = admin_harness.client()
    wrong = client.post("/api/login", json={"username": "alice", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong user name or password"
    for path in ("/api/sources", "/api/users", "/api/identities", "/api/tokens", "/api/session"):
        assert client.get(path).status_code == 401, path


def test_state_changes_with_the_cookie_need_the_csrf_header(admin_harness: AdminHarness) -> None:
    client = admin_harness.login("alice", ALICE_PASSWORD)
    token = client.headers.pop(CSRF_HEADER)
    missing = client.post("/api/identities", json={"address": "a@example.com"})
    assert missing.status_code == 403 and CSRF_HEADER in missing.json()["detail"]
    client.headers[CSRF_HEADER] = "0" * len(token)
    assert client.post("/api/identities", json={"address": "a@example.com"}).status_code == 403
    assert admin_harness.store.list_identities(user_id=2) == []
    client.headers[CSRF_HEADER] = token
    assert client.post("/api/identities", json={"address": "a@example.com"}).status_code == 201
    # Reads need no token.
    client.headers.pop(CSRF_HEADER)
    assert client.get("/api/identities").status_code == 200


def test_login_is_throttled_per_address_and_per_user(admin_harness: AdminHarness) -> None:
    free = admin_harness.settings.auth_free_failures
    client = admin_harness.client("198.51.100.7")
    statuses = [
        client.post("/api/login", json={"username": "bob", "password": "guess"}).status_code
        for _ in range(free + 2)
    ]
    assert statuses[:free] == [401] * free and 429 in statuses[free:], statuses
    throttled = client.post("/api/login", json={"username": "bob", "password": BOB_PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    # Per address: this address is slowed for another user too.
    other_user = client.post("/api/login", json={"username": "alice", "password": "x"})
    assert other_user.status_code == 429
    # Per user name: bob is slowed from a fresh address as well.
    elsewhere = admin_harness.client("203.0.113.9")
    assert (
        elsewhere.post("/api/login", json={"username": "bob", "password": BOB_PASSWORD}).status_code
        == 429
    )
    # Alice, from another address, is not affected.
    fine = admin_harness.client("192.0.2.44")
    ok = fine.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD})
    assert ok.status_code == 200


def test_api_tokens_are_shown_once_hashed_at_rest_and_revocable(
    admin_harness: AdminHarness,
) -> None:
    client = admin_harness.login("alice", ALICE_PASSWORD)
    created = client.post("/api/tokens", json={"name": "backup script"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("gwt_") and len(token) > 40
    listed = client.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["backup script"] and "token" not in listed[0]
    with admin_harness.store.database.read() as session:
        from sqlmodel import select

        from gateway.store.models import ApiToken

        stored = session.exec(select(ApiToken)).one()
        assert token not in stored.token_hash and len(stored.token_hash) == 64
    script = admin_harness.client()
    script.headers["Authorization"] = f"Bearer {token}"
    assert script.get("/api/session").json()["user"]["name"] == "alice"
    # A bearer token is not an ambient credential: no CSRF header needed.
    assert script.post("/api/identities", json={"address": "s@example.com"}).status_code == 201
    assert client.get("/api/tokens").json()[0]["last_used_at"] is not None
    token_id = created.json()["id"]
    bob = admin_harness.login("bob", BOB_PASSWORD)
    assert bob.delete(f"/api/tokens/{token_id}").status_code == 404  # not his
    assert client.delete(f"/api/tokens/{token_id}").status_code == 204
    assert script.get("/api/session").status_code == 401


def test_only_admins_manage_users(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    assert alice.get("/api/users").status_code == 403
    assert alice.post("/api/users", json={"name": "eve", "password": "x"}).status_code == 403
    root = admin_harness.login("root", ADMIN_PASSWORD)
    assert [u["name"] for u in root.get("/api/users").json()] == ["alice", "bob", "root"]
    created = root.post("/api/users", json={"name": "carol", "password": "carol-pw"})
    assert created.status_code == 201 and "password" not in created.json()
    assert root.post("/api/users", json={"name": "carol", "password": "x"}).status_code == 409
    carol_id = created.json()["id"]
    carol = admin_harness.login("carol", "carol-pw")
    assert root.patch(f"/api/users/{carol_id}", json={"password": "new-pw"}).status_code == 200
    assert carol.get("/api/session").status_code == 401
    admin_harness.login("carol", "new-pw")
    me = root.get("/api/session").json()["user"]["id"]
    assert root.delete(f"/api/users/{me}").status_code == 409
    assert root.delete(f"/api/users/{carol_id}").status_code == 204
    assert root.delete(f"/api/users/{carol_id}").status_code == 404


def test_users_change_their_own_password(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    other_browser = admin_harness.login("alice", ALICE_PASSWORD)
    wrong = alice.post(
        "/api/session/password", json={"current_password": "no", "new_password": "n3w"}
    )
    assert wrong.status_code == 403
    done = alice.post(
        "/api/session/password",
        json={"current_password": ALICE_PASSWORD, "new_password": "n3w-password"},
    )
    assert done.status_code == 204
    assert alice.get("/api/session").status_code == 200  # this session goes on
    assert other_browser.get("/api/session").status_code == 401  # the others end
    admin_harness.login("alice", "n3w-password")


def test_identities_belong_to_their_user(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    bob = admin_harness.login("bob", BOB_PASSWORD)
    made = alice.post(
        "/api/identities", json={"address": "Alice@Example.com", "display_name": "Alice"}
    ).json()
    assert made["address"] == "alice@example.com"
    assert alice.post("/api/identities", json={"address": "alice@example.com"}).status_code == 409
    assert alice.post("/api/identities", json={"address": "not-an-address"}).status_code == 422
    assert bob.get("/api/identities").json() == []
    assert bob.delete(f"/api/identities/{made['id']}").status_code == 404
    assert alice.delete(f"/api/identities/{made['id']}").status_code == 204
    assert alice.get("/api/identities").json() == []


def test_no_response_or_log_line_carries_a_password(
    admin_harness: AdminHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source_secret = "Source-Secret-Value-99"
    client = admin_harness.client()
    responses = [
        client.post("/api/login", json={"username": "alice", "password": "Wrong-Secret-77"}),
        client.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD}),
    ]
    client.headers[CSRF_HEADER] = responses[-1].json()["csrf_token"]
    source = {
        "name": "isp",
        "protocol": "pop3",
        "host": "127.0.0.1",
        "port": 1,
        "security": "tls",
        "username": "me",
        "password": source_secret,
    }
    responses.append(client.post("/api/sources", json=source))
    source_id = responses[-1].json()["id"]
    responses.append(client.post("/api/sources", json={**source, "port": "bad"}))
    responses.append(client.get("/api/sources"))
    responses.append(client.get(f"/api/sources/{source_id}"))
    responses.append(client.post(f"/api/sources/{source_id}/test"))
    responses.append(client.post("/api/sources/test", json=source))
    responses.append(client.patch(f"/api/sources/{source_id}", json={"password": source_secret}))
    responses.append(client.get("/openapi.json"))
    for secret in (source_secret, ALICE_PASSWORD, "Wrong-Secret-77"):
        for response in responses:
            assert secret not in response.text, response.request.url
        assert secret not in caplog.text
    assert admin_harness.store.read_source_secret(source_id=source_id) == source_secret


def test_probes_and_docs(admin_harness: AdminHarness) -> None:
    client = admin_harness.client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
    panel = client.get("/")
    assert "app.js" in panel.text
    assert "script-src 'self'" in panel.headers["content-security-policy"]
    assert panel.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    password = schema["components"]["schemas"]["LoginRequest"]["properties"]["password"]
    assert password["writeOnly"] is True
