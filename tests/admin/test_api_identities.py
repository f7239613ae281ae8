"""Identities through the admin API: relay settings, the write-only relay secret, and who may
see or change which identity."""

from __future__ import annotations

import logging

import pytest

from tests.admin.conftest import ALICE_PASSWORD, BOB_PASSWORD, AdminHarness

RELAY_SECRET = "Relay-Secret-Value-42"
NEW_RELAY_SECRET = "Relay-Secret-Value-43"


def test_identity_with_relay_settings_add_edit_remove(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    made = alice.post(
        "/api/identities",
        json={
            "address": "alice@example.com",
            "display_name": "Alice",
            "relay_host": "smtp.example.com",
            "relay_port": 465,
            "relay_security": "tls",
            "relay_username": "alice",
            "relay_secret": RELAY_SECRET,
            "save_to_source_sent": True,
            "relay_options": {"timeout_seconds": 20},
        },
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["relay_host"] == "smtp.example.com" and body["relay_port"] == 465
    assert body["relay_security"] == "tls" and body["relay_username"] == "alice"
    assert body["has_relay_secret"] is True and body["save_to_source_sent"] is True
    assert body["relay_options"] == {"timeout_seconds": 20}
    assert "relay_secret" not in body

    # An edit without a secret keeps the stored one.
    edited = alice.patch(
        f"/api/identities/{body['id']}",
        json={"relay_port": 587, "relay_security": "starttls", "save_to_source_sent": False},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["relay_port"] == 587 and edited.json()["has_relay_secret"] is True
    target = admin_harness.store.read_relay_target(identity_id=body["id"])
    assert target.secret == RELAY_SECRET and target.security == "starttls"
    alice.patch(f"/api/identities/{body['id']}", json={"relay_secret": NEW_RELAY_SECRET})
    assert admin_harness.store.read_relay_target(identity_id=body["id"]).secret == (
        NEW_RELAY_SECRET
    )
    cleared = alice.patch(f"/api/identities/{body['id']}", json={"use_source_secret": True})
    assert cleared.json()["has_relay_secret"] is False
    assert alice.delete(f"/api/identities/{body['id']}").status_code == 204
    assert alice.get("/api/identities").json() == []


def test_relay_settings_are_validated_naming_the_field(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    base = {"address": "alice@example.com"}
    cases = {
        "relay_port": {**base, "relay_port": 70000},
        "relay_security": {**base, "relay_security": "ssl"},
        "relay_options": {**base, "relay_options": {"tls_verify": False}},
        "allow_plaintext": {**base, "relay_security": "none"},
    }
    for field, body in cases.items():
        response = alice.post("/api/identities", json=body)
        assert response.status_code == 422, (field, response.text)
        assert field in response.text, (field, response.text)
    plaintext = alice.post(
        "/api/identities",
        json={**base, "relay_security": "none", "relay_options": {"allow_plaintext": True}},
    )
    assert plaintext.status_code == 201
    both = alice.patch(
        f"/api/identities/{plaintext.json()['id']}",
        json={"relay_secret": "x", "use_source_secret": True},
    )
    assert both.status_code == 422


def test_a_user_sees_and_changes_only_their_own_identities(admin_harness: AdminHarness) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    bob = admin_harness.login("bob", BOB_PASSWORD)
    made = alice.post("/api/identities", json={"address": "alice@example.com"}).json()
    assert bob.get("/api/identities").json() == []
    assert bob.patch(f"/api/identities/{made['id']}", json={"relay_port": 25}).status_code == 404
    assert bob.delete(f"/api/identities/{made['id']}").status_code == 404
    assert alice.get("/api/identities").json()[0]["relay_port"] == made["relay_port"]
    # Bob cannot tie an identity to Alice's source either.
    source = admin_harness.store.add_source(
        user_id=admin_harness.store.get_user(name="alice").id,
        name="isp",
        protocol="imap",
        host="imap.example.com",
        port=993,
        security="tls",
        username="alice@example.com",
        secret="s",
    )
    stolen = bob.post("/api/identities", json={"address": "b@example.com", "source_id": source.id})
    assert stolen.status_code == 404


def test_no_response_or_log_line_carries_the_relay_secret(
    admin_harness: AdminHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    made = alice.post(
        "/api/identities", json={"address": "alice@example.com", "relay_secret": RELAY_SECRET}
    )
    identity_id = made.json()["id"]
    responses = [
        made,
        alice.get("/api/identities"),
        alice.patch(f"/api/identities/{identity_id}", json={"relay_secret": NEW_RELAY_SECRET}),
        alice.patch(
            f"/api/identities/{identity_id}",
            json={"relay_secret": NEW_RELAY_SECRET, "relay_port": "bad"},
        ),
        alice.post("/api/identities", json={"address": "x", "relay_secret": RELAY_SECRET}),
        # A whole-model check fails: the error must not echo the body it was given.
        alice.post(
            "/api/identities",
            json={
                "address": "a@example.com",
                "relay_security": "none",
                "relay_secret": RELAY_SECRET,
            },
        ),
        alice.get("/api/identities"),
    ]
    for secret in (RELAY_SECRET, NEW_RELAY_SECRET):
        for response in responses:
            assert secret not in response.text, response.request.url
        assert secret not in caplog.text


def test_a_422_never_echoes_a_source_password(admin_harness: AdminHarness) -> None:
    """The same whole-body check on sources (security none without allow_plaintext)."""
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    response = alice.post(
        "/api/sources",
        json={
            "name": "isp",
            "protocol": "imap",
            "host": "127.0.0.1",
            "port": 143,
            "security": "none",
            "username": "me",
            "password": RELAY_SECRET,
        },
    )
    assert response.status_code == 422 and "allow_plaintext" in response.text
    assert RELAY_SECRET not in response.text
