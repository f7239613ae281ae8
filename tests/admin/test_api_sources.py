"""Admin API: sources against a real Dovecot — CRUD with typed options, ownership, the
connection test by step, sync now, status, warnings, history, metrics."""

from __future__ import annotations

import contextlib
import socket
from datetime import UTC, datetime, timedelta

from gateway.fetch.runner import run_source_sync
from tests.admin.conftest import ALICE_PASSWORD, BOB_PASSWORD, AdminHarness
from tests.support.dovecot import DovecotServer, free_port
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER


def _imap_source(dovecot: DovecotServer, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "work",
        "protocol": "imap",
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "security": "none",
        "username": DOVECOT_USER,
        "password": DOVECOT_PASSWORD,
        "options": {"allow_plaintext": True, "folders": ["INBOX"]},
    }
    body.update(changes)
    return body


def test_sources_crud_and_user_a_never_sees_user_b(
    admin_harness: AdminHarness, dovecot: DovecotServer
) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    bob = admin_harness.login("bob", BOB_PASSWORD)
    created = alice.post("/api/sources", json=_imap_source(dovecot))
    assert created.status_code == 201, created.text
    source = created.json()
    assert "password" not in source and source["options"]["folders"] == ["INBOX"]
    assert source["status"]["state"] == "never_synced"
    assert admin_harness.scheduler.requests == [(source["id"], "added")]
    assert [s["name"] for s in alice.get("/api/sources").json()] == ["work"]
    # Bob sees nothing of it and cannot touch it: 404, as if it did not exist.
    assert bob.get("/api/sources").json() == []
    sid = source["id"]
    for method, path, body in (
        ("GET", f"/api/sources/{sid}", None),
        ("PATCH", f"/api/sources/{sid}", {"poll_interval": 600}),
        ("DELETE", f"/api/sources/{sid}", None),
        ("POST", f"/api/sources/{sid}/test", None),
        ("POST", f"/api/sources/{sid}/sync", None),
        ("GET", f"/api/sources/{sid}/history", None),
    ):
        assert bob.request(method, path, json=body).status_code == 404, path
    assert admin_harness.store.get_source_by_id(source_id=sid).poll_interval == 60
    # Administrators are no exception.
    root = admin_harness.login("root", "admin-pw-Secret-1")
    assert root.get(f"/api/sources/{sid}").status_code == 404
    assert alice.post("/api/sources", json=_imap_source(dovecot)).status_code == 409
    changed = alice.patch(
        f"/api/sources/{sid}", json={"poll_interval": 600, "options": {"allow_plaintext": True}}
    )
    assert changed.status_code == 200
    assert changed.json()["poll_interval"] == 600 and changed.json()["options"] == {
        "allow_plaintext": True
    }
    assert alice.delete(f"/api/sources/{sid}").status_code == 204
    assert alice.get("/api/sources").json() == []


def test_a_wrong_option_is_a_422_naming_the_field(
    admin_harness: AdminHarness, dovecot: DovecotServer
) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    bad = alice.post(
        "/api/sources",
        json=_imap_source(dovecot, options={"allow_plaintext": True, "delete_policy": "shred"}),
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][-1] == "delete_policy"
    unknown = alice.post(
        "/api/sources", json=_imap_source(dovecot, options={"allow_plaintext": True, "x": 1})
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "x"
    pop_only = alice.post(
        "/api/sources",
        json=_imap_source(dovecot, options={"allow_plaintext": True, "retention": "keep"}),
    )
    assert pop_only.status_code == 422 and pop_only.json()["detail"][0]["loc"][-1] == "retention"
    plaintext = alice.post("/api/sources", json=_imap_source(dovecot, options={}))
    assert plaintext.status_code == 422 and "allow_plaintext" in plaintext.text
    sid = alice.post("/api/sources", json=_imap_source(dovecot)).json()["id"]
    patched = alice.patch(f"/api/sources/{sid}", json={"options": {"push": "yes"}})
    assert patched.status_code == 422 and "push" in patched.text
    assert alice.get("/api/sources").json()[0]["options"]["folders"] == ["INBOX"]


def test_connection_test_names_the_failing_step(
    admin_harness: AdminHarness, dovecot: DovecotServer
) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    ok = alice.post(
        "/api/sources/test", json=_imap_source(dovecot, options={"allow_plaintext": True})
    )
    result = ok.json()
    assert result["ok"] is True and result["failed_step"] is None, result
    assert [s["step"] for s in result["steps"]] == ["dns", "tcp", "authentication", "protocol"]
    assert "INBOX" in result["folders"]
    pop3 = alice.post(
        "/api/sources/test",
        json=_imap_source(
            dovecot, protocol="pop3", port=dovecot.pop3_port, options={"allow_plaintext": True}
        ),
    ).json()
    assert pop3["ok"] is True and pop3["messages"] == 0, pop3
    wrong = alice.post("/api/sources/test", json=_imap_source(dovecot, password="wrong")).json()
    assert wrong["failed_step"] == "authentication" and "login rejected" in wrong["message"]
    closed = alice.post("/api/sources/test", json=_imap_source(dovecot, port=free_port())).json()
    assert closed["failed_step"] == "tcp", closed
    nowhere = alice.post(
        "/api/sources/test", json=_imap_source(dovecot, host="no-such-host.invalid")
    ).json()
    assert nowhere["failed_step"] == "dns", nowhere
    # TLS to a plaintext port: the handshake fails.
    tls = alice.post(
        "/api/sources/test", json=_imap_source(dovecot, security="tls", options={})
    ).json()
    assert tls["failed_step"] == "tls", tls


def test_connection_test_times_out_at_the_step_reached(admin_harness: AdminHarness) -> None:
    """A server that accepts and never greets: the test ends within its bound, saying where."""
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        started = datetime.now(UTC)
        result = alice.post(
            "/api/sources/test",
            json={
                "name": "silent",
                "protocol": "imap",
                "host": "127.0.0.1",
                "port": silent.getsockname()[1],
                "security": "tls",
                "username": "x",
                "password": "y",
                "options": {"timeout_seconds": 1},
            },
        ).json()
    assert result["failed_step"] == "timeout", result
    assert "tls" in result["message"]
    assert datetime.now(UTC) - started < timedelta(seconds=10)


def test_saved_source_test_sync_now_status_history_and_metrics(
    admin_harness: AdminHarness, dovecot: DovecotServer
) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    dovecot.load_maildir(
        DOVECOT_USER, "INBOX", [b"Subject: hello\r\n\r\nbody\r\n", b"Subject: two\r\n\r\nx\r\n"]
    )
    sid = alice.post("/api/sources", json=_imap_source(dovecot)).json()["id"]
    assert alice.post(f"/api/sources/{sid}/test").json()["ok"] is True
    queued = alice.post(f"/api/sources/{sid}/sync")
    assert queued.status_code == 202 and queued.json()["queued"] is True
    assert admin_harness.scheduler.requests[-1] == (sid, "admin")
    # What the scheduler does with the request: one real sync through the runner.
    store = admin_harness.store
    run_source_sync(store, store.get_source_by_id(source_id=sid))
    status = alice.get(f"/api/sources/{sid}").json()["status"]
    assert status["state"] == "ok" and status["messages_fetched"] == 2
    assert status["folders"] == ["INBOX"] and status["last_success_at"] is not None
    assert status["budget_bytes_used"] > 0 and status["budget_bytes_limit"] == 2500 * 1024 * 1024
    history = alice.get(f"/api/sources/{sid}/history").json()
    assert len(history) == 1 and history[0]["fetched"] == 2 and history[0]["seconds"] >= 0
    # A failing sync: status carries the class and time, metrics count it.
    store.set_source_secret(source_id=sid, secret="wrong")
    try:
        run_source_sync(store, store.get_source_by_id(source_id=sid))
    except Exception as error:
        assert "auth" in str(error)
    failing = alice.get(f"/api/sources/{sid}").json()["status"]
    assert failing["state"] == "failing" and failing["last_error_class"] == "auth"
    assert failing["consecutive_failures"] == 1 and failing["last_error_at"] is not None
    metrics = admin_harness.client().get("/metrics").text
    assert 'gateway_sources{state="failing"} 1.0' in metrics
    assert "gateway_store_message_bytes" in metrics
    assert "gateway_sync_duration_seconds_bucket" in metrics


def test_sync_now_without_a_scheduler_says_fetching_is_off(
    admin_harness: AdminHarness, dovecot: DovecotServer
) -> None:
    from fastapi.testclient import TestClient

    from gateway.admin.app import create_app

    app = create_app(admin_harness.store, admin_harness.settings)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        login = client.post("/api/login", json={"username": "alice", "password": ALICE_PASSWORD})
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        sid = client.post("/api/sources", json=_imap_source(dovecot)).json()["id"]
        assert client.post(f"/api/sources/{sid}/sync").status_code == 503


def test_warnings_for_risky_setups(admin_harness: AdminHarness, dovecot: DovecotServer) -> None:
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    alice.post("/api/sources", json=_imap_source(dovecot, name="imap"))
    pop = alice.post(
        "/api/sources",
        json=_imap_source(
            dovecot,
            name="pop",
            protocol="pop3",
            port=dovecot.pop3_port,
            options={"allow_plaintext": True, "retention": "delete_after_download"},
        ),
    ).json()
    codes = {w["code"] for w in pop["warnings"]}
    assert codes == {"pop3_deletes_while_read_elsewhere", "no_tls"}
    assert "also read over IMAP" in pop["warnings"][0]["message"]
    twice = alice.post("/api/sources", json=_imap_source(dovecot, name="again")).json()
    assert "same_account_twice" in {w["code"] for w in twice["warnings"]}
    store = admin_harness.store
    now = datetime.now(UTC)
    store.record_sync_success(
        twice["id"], fetched=0, bytes=0, now=now - timedelta(days=2), next_run_at=None
    )
    store.record_sync_failure(
        twice["id"], error_class="auth", message="login rejected", now=now, next_run_at=None
    )
    store.write_sync_state(
        twice["id"], {"budget_day": now.date().isoformat(), "budget_bytes": 2400 * 1024 * 1024}
    )
    warned = alice.get(f"/api/sources/{twice['id']}").json()["warnings"]
    assert {"failing_over_a_day", "budget_nearly_used"} <= {w["code"] for w in warned}


def test_an_untrusted_certificate_is_the_certificate_step(admin_harness: AdminHarness) -> None:
    """A TLS server with a self-signed certificate: the handshake fails on trust, and the
    test says so (the fix is a CA file or a pin, not a different password)."""
    import threading

    from gateway.tls import ensure_certificate, server_context

    cert, key = ensure_certificate(admin_harness.settings)
    context = server_context(cert, key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)

        def serve() -> None:
            for _ in range(2):  # the TCP step's probe, then the TLS attempt
                connection, _ = listener.accept()
                with connection, contextlib.suppress(OSError):
                    context.wrap_socket(connection, server_side=True)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        alice = admin_harness.login("alice", ALICE_PASSWORD)
        result = alice.post(
            "/api/sources/test",
            json={
                "name": "selfsigned",
                "protocol": "pop3",
                "host": "127.0.0.1",
                "port": listener.getsockname()[1],
                "security": "tls",
                "username": "x",
                "password": "y",
            },
        ).json()
        thread.join(timeout=10)
    assert result["failed_step"] == "certificate", result
    assert [s["step"] for s in result["steps"]] == ["dns", "tcp"]
