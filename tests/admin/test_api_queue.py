"""The outbound queue through the admin API and in /metrics: who sees which messages,
retry and drop (CSRF-protected), and the queue depth gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.admin.sessions import CSRF_HEADER
from gateway.store import MailStore
from gateway.store.views import OutboundSubmission
from tests.admin.conftest import ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, AdminHarness

LATER = timedelta(hours=1)


def _queue(store: MailStore, user_name: str, count: int) -> list[int]:
    user = store.get_user(name=user_name)
    address = f"{user_name}@example.org"
    identity = store.find_identity(user_id=user.id, address=address) or store.add_identity(
        user_id=user.id, address=address
    )
    return store.queue_outbound_messages(
        items=[
            OutboundSubmission(
                user_id=user.id,
                identity_id=identity.id,
                sender=address,
                recipients=("carol@example.net",),
                blob=store.write_outbound_blob(content=f"From: {address}\r\n\r\n{n}\r\n".encode()),
                message_id_header=f"<{user_name}.{n}@example.org>",
            )
            for n in range(count)
        ],
        now=datetime.now(UTC) + LATER,
        lifetime=timedelta(days=5),
    )


def _defer_and_bounce(store: MailStore, deferred: int, bounced: int) -> None:
    """One failed try for `deferred`, a permanent failure for `bounced` (as the worker does)."""
    now = datetime.now(UTC) + 2 * LATER
    claimed = store.claim_outbound_messages(
        owner="test", now=now, limit=10, lease=timedelta(minutes=5)
    )
    assert {deferred, bounced} <= {item.id for item in claimed}
    store.defer_outbound_message(
        outbound_id=deferred,
        owner="test",
        error="451 4.3.0 try later",
        next_attempt_at=now + LATER,
    )
    store.finish_outbound_message(
        outbound_id=bounced, state="bounced", now=now, error="550 5.1.1 no such user"
    )


def test_users_see_their_queue_and_admins_see_all(admin_harness: AdminHarness) -> None:
    store = admin_harness.store
    alice_ids = _queue(store, "alice", 3)
    bob_ids = _queue(store, "bob", 1)
    _defer_and_bounce(store, deferred=alice_ids[1], bounced=alice_ids[2])
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    listed = {item["id"]: item for item in alice.get("/api/queue").json()}
    assert set(listed) == set(alice_ids)
    assert [listed[i]["state"] for i in alice_ids] == ["queued", "deferred", "bounced"]
    deferred = listed[alice_ids[1]]
    assert deferred["attempts"] == 1 and deferred["last_error"] == "451 4.3.0 try later"
    assert deferred["next_attempt_at"] is not None and deferred["user_name"] == "alice"
    assert listed[alice_ids[2]]["next_attempt_at"] is None
    assert listed[alice_ids[2]]["last_error"] == "550 5.1.1 no such user"
    bob = admin_harness.login("bob", BOB_PASSWORD)
    assert [item["id"] for item in bob.get("/api/queue").json()] == bob_ids
    root = admin_harness.login("root", ADMIN_PASSWORD)
    assert {item["id"] for item in root.get("/api/queue").json()} == {*alice_ids, *bob_ids}


def test_retry_and_drop_own_messages_with_csrf(admin_harness: AdminHarness) -> None:
    store = admin_harness.store
    alice_ids = _queue(store, "alice", 3)
    (bob_id,) = _queue(store, "bob", 1)
    _defer_and_bounce(store, deferred=alice_ids[1], bounced=alice_ids[2])
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    token = alice.headers.pop(CSRF_HEADER)
    assert alice.post(f"/api/queue/{alice_ids[0]}/retry").status_code == 403
    assert alice.post(f"/api/queue/{alice_ids[0]}/drop").status_code == 403
    alice.headers[CSRF_HEADER] = token
    # Another user's message is "not found", never "forbidden".
    assert alice.post(f"/api/queue/{bob_id}/retry").status_code == 404
    assert alice.post(f"/api/queue/{bob_id}/drop").status_code == 404
    assert store.get_outbound_message(outbound_id=bob_id).state == "queued"

    before = datetime.now(UTC)
    retried = alice.post(f"/api/queue/{alice_ids[0]}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    assert datetime.fromisoformat(retried.json()["next_attempt_at"]) <= datetime.now(UTC)
    assert datetime.fromisoformat(retried.json()["next_attempt_at"]) >= before
    # A bounced message is queued again, for a new lifetime.
    requeued = alice.post(f"/api/queue/{alice_ids[2]}/retry")
    assert requeued.status_code == 200 and requeued.json()["state"] == "deferred"
    assert alice.post(f"/api/queue/{alice_ids[1]}/drop").status_code == 204
    assert store.get_outbound_message(outbound_id=alice_ids[1]).state == "dropped"
    assert alice_ids[1] not in {item["id"] for item in alice.get("/api/queue").json()}
    assert alice.post(f"/api/queue/{alice_ids[1]}/drop").status_code == 404
    assert alice.post("/api/queue/999999/retry").status_code == 404
    # An administrator acts on anyone's message.
    root = admin_harness.login("root", ADMIN_PASSWORD)
    assert root.post(f"/api/queue/{bob_id}/drop").status_code == 204


def test_relayed_message_cannot_be_dropped(admin_harness: AdminHarness) -> None:
    store = admin_harness.store
    (message_id,) = _queue(store, "alice", 1)
    store.claim_outbound_messages(
        owner="test", now=datetime.now(UTC) + 2 * LATER, limit=1, lease=timedelta(minutes=5)
    )
    store.record_outbound_relayed(relayed=[(message_id, "250 ok")], owner="test")
    alice = admin_harness.login("alice", ALICE_PASSWORD)
    assert alice.get("/api/queue").json()[0]["state"] == "relayed"
    refused = alice.post(f"/api/queue/{message_id}/drop")
    assert refused.status_code == 409 and "not queued" in refused.json()["detail"]


def test_queue_depth_by_state_in_metrics(admin_harness: AdminHarness) -> None:
    store = admin_harness.store
    alice_ids = _queue(store, "alice", 4)
    _defer_and_bounce(store, deferred=alice_ids[1], bounced=alice_ids[2])
    store.record_outbound_relayed(relayed=[(alice_ids[3], "250 ok")], owner="test")
    lines = admin_harness.client().get("/metrics").text.splitlines()
    depth = {line for line in lines if line.startswith("gateway_outbound_queue_depth{")}
    assert depth == {
        'gateway_outbound_queue_depth{state="queued"} 1.0',
        'gateway_outbound_queue_depth{state="deferred"} 1.0',
        'gateway_outbound_queue_depth{state="relayed"} 1.0',
    }
    assert "# TYPE gateway_outbound_queue_depth gauge" in lines
