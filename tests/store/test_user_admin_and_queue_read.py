"""Store operations behind the users page and the queue page, on SQLite and PostgreSQL:
the administrator flag with the last-administrator guard, revoking a user's credentials,
editing an identity (the secret write-only), and the queue depth by state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.store import MailStore, NotFoundError
from gateway.store.user_admin import LastAdministratorError
from gateway.store.views import OutboundSubmission

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def test_the_last_administrator_keeps_the_flag(store: MailStore) -> None:
    root = store.create_user(name="root", password="pw", is_admin=True)
    alice = store.create_user(name="alice", password="pw")
    with pytest.raises(LastAdministratorError):
        store.set_user_admin(user_id=root.id, is_admin=False)
    assert store.set_user_admin(user_id=alice.id, is_admin=True).is_admin is True
    assert store.count_admins() == 2
    assert store.set_user_admin(user_id=root.id, is_admin=False).is_admin is False
    with pytest.raises(LastAdministratorError):
        store.set_user_admin(user_id=alice.id, is_admin=False)
    with pytest.raises(NotFoundError):
        store.set_user_admin(user_id=9999, is_admin=True)


def test_revoking_credentials_ends_sessions_and_tokens_of_that_user_only(
    store: MailStore,
) -> None:
    alice = store.create_user(name="alice", password="pw")
    bob = store.create_user(name="bob", password="pw")
    later = NOW + timedelta(days=1)
    for user in (alice, bob):
        store.create_admin_session(user_id=user.id, token=f"s-{user.name}", expires_at=later)
        store.create_api_token(user_id=user.id, name="t", token=f"gwt_{user.name}")
    store.revoke_user_credentials(user_id=alice.id)
    assert store.find_session_user(token="s-alice", now=NOW) is None
    assert store.find_token_user(token="gwt_alice", now=NOW) is None
    assert store.find_session_user(token="s-bob", now=NOW) == bob
    assert store.find_token_user(token="gwt_bob", now=NOW) is not None


def test_update_identity_keeps_the_secret_unless_replaced(store: MailStore) -> None:
    alice = store.create_user(name="alice", password="pw")
    identity = store.add_identity(
        user_id=alice.id, address="alice@example.org", relay_secret="first"
    )
    changed = store.update_identity(
        user_id=alice.id,
        identity_id=identity.id,
        relay_host="relay.example.org",
        relay_port=465,
        relay_security="tls",
        relay_options={"timeout_seconds": 5},
    )
    assert (changed.relay_host, changed.relay_port, changed.relay_security) == (
        "relay.example.org",
        465,
        "tls",
    )
    assert changed.relay_options == {"timeout_seconds": 5}
    assert store.read_relay_target(identity_id=identity.id).secret == "first"
    store.update_identity(user_id=alice.id, address="ALICE@example.org", relay_secret="second")
    assert store.read_relay_target(identity_id=identity.id).secret == "second"
    cleared = store.update_identity(
        user_id=alice.id, identity_id=identity.id, use_source_secret=True
    )
    assert cleared.has_relay_secret is False
    bob = store.create_user(name="bob", password="pw")
    with pytest.raises(NotFoundError):
        store.update_identity(user_id=bob.id, identity_id=identity.id, relay_port=25)


def test_queue_depth_by_state(store: MailStore) -> None:
    alice = store.create_user(name="alice", password="pw")
    identity = store.add_identity(user_id=alice.id, address="alice@example.org")
    assert store.count_outbound_by_state() == {"queued": 0, "deferred": 0, "relayed": 0}
    ids = store.queue_outbound_messages(
        items=[
            OutboundSubmission(
                user_id=alice.id,
                identity_id=identity.id,
                sender="alice@example.org",
                recipients=("b@example.net",),
                blob=store.write_outbound_blob(content=f"Subject: {n}\r\n\r\n".encode()),
                message_id_header=f"<{n}@example.org>",
            )
            for n in range(5)
        ],
        now=NOW,
        lifetime=timedelta(days=5),
    )
    store.claim_outbound_messages(owner="w", now=NOW, limit=3, lease=timedelta(minutes=5))
    store.defer_outbound_message(
        outbound_id=ids[0], owner="w", error="421 later", next_attempt_at=NOW
    )
    store.record_outbound_relayed(relayed=[(ids[1], "250 ok")], owner="w")
    store.finish_outbound_message(outbound_id=ids[2], state="bounced", now=NOW, error="550")
    store.drop_outbound_message(outbound_id=ids[3], now=NOW)
    assert store.count_outbound_by_state() == {"queued": 1, "deferred": 1, "relayed": 1}
