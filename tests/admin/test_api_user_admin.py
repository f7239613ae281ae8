"""Administrators on the users page: reset a password (which revokes the user's sessions and
API tokens) and grant or take away administration, never leaving the gateway without one."""

from __future__ import annotations

import logging

import pytest

from gateway.admin.sessions import new_api_token
from tests.admin.conftest import ADMIN_PASSWORD, ALICE_PASSWORD, AdminHarness


def test_password_reset_revokes_sessions_and_api_tokens(
    admin_harness: AdminHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = admin_harness.store
    alice_id = store.get_user(name="alice").id
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    token = new_api_token()
    store.create_api_token(user_id=alice_id, name="script", token=token)
    script = admin_harness.client()
    script.headers["Authorization"] = f"Bearer {token}"
    assert script.get("/api/session").status_code == 200
    root = admin_harness.login("root", ADMIN_PASSWORD)
    new_password = "Reset-Password-Value-5"
    reset = root.patch(f"/api/users/{alice_id}", json={"password": new_password})
    assert reset.status_code == 200 and new_password not in reset.text
    assert alice.get("/api/session").status_code == 401
    assert script.get("/api/session").status_code == 401
    assert store.list_api_tokens(user_id=alice_id) == []
    assert new_password not in caplog.text
    admin_harness.login("alice", new_password)
    # Other users keep their sessions.
    assert root.get("/api/session").status_code == 200


def test_toggle_admin_and_the_last_admin_keeps_the_flag(admin_harness: AdminHarness) -> None:
    store = admin_harness.store
    root_id = store.get_user(name="root").id
    alice_id = store.get_user(name="alice").id
    root = admin_harness.login("root", ADMIN_PASSWORD)
    alone = root.patch(f"/api/users/{root_id}", json={"is_admin": False})
    assert alone.status_code == 409 and "last administrator" in alone.json()["detail"]
    assert store.get_user_by_id(user_id=root_id).is_admin is True

    promoted = root.patch(f"/api/users/{alice_id}", json={"is_admin": True})
    assert promoted.status_code == 200 and promoted.json()["is_admin"] is True
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    assert alice.get("/api/users").status_code == 200
    # With two administrators, one may step down; then the other is the last one.
    assert root.patch(f"/api/users/{root_id}", json={"is_admin": False}).status_code == 200
    assert root.get("/api/users").status_code == 403
    assert alice.patch(f"/api/users/{alice_id}", json={"is_admin": False}).status_code == 409
    assert store.count_admins() == 1


def test_only_admins_change_users(admin_harness: AdminHarness) -> None:
    alice_id = admin_harness.store.get_user(name="alice").id
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    assert alice.patch(f"/api/users/{alice_id}", json={"is_admin": True}).status_code == 403
    assert admin_harness.store.get_user_by_id(user_id=alice_id).is_admin is False
    root = admin_harness.login("root", ADMIN_PASSWORD)
    assert root.patch("/api/users/999999", json={"is_admin": True}).status_code == 404
    assert root.patch(f"/api/users/{alice_id}", json={"is_admin": "yes"}).status_code == 422
