"""The outbound queue and identities in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from gateway.settings import Settings
from gateway.store import InvalidOperationError, MailStore, NotFoundError, open_store
from gateway.store.views import OutboundSubmission

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def _queue(
    store: MailStore, count: int, *, now: datetime = NOW, name: str = ""
) -> tuple[int, list[int]]:
    user = store.create_user(name=name or f"u{count}", password="pw")
    identity = store.add_identity(user_id=user.id, address="me@example.org")
    items = [
        OutboundSubmission(
            user_id=user.id,
            identity_id=identity.id,
            sender="me@example.org",
            recipients=("a@example.net", "b@example.net"),
            blob=store.write_outbound_blob(
                content=f"From: me@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n".encode()
            ),
            message_id_header=f"<{n}@example.org>",
        )
        for n in range(count)
    ]
    return user.id, store.queue_outbound_messages(items=items, now=now, lifetime=timedelta(days=5))


def test_queued_messages_are_durable_and_readable(store: MailStore) -> None:
    _, ids = _queue(store, 3)
    queued = store.list_outbound_messages()
    assert [m.id for m in queued] == ids
    first = queued[0]
    assert first.state == "queued" and first.attempts == 0 and first.next_attempt_at == NOW
    assert first.expires_at == NOW + timedelta(days=5)
    assert store.read_outbound_content(blob_hash=first.blob_hash).endswith(b"body 0\r\n")
    # The garbage collector keeps the blobs the queue still needs.
    assert store.collect_garbage(grace_seconds=0) == 0
    assert store.read_outbound_content(blob_hash=first.blob_hash)


def test_claims_are_leases_held_by_one_owner(store: MailStore) -> None:
    _, ids = _queue(store, 2)
    claimed = store.claim_outbound_messages(owner="a", now=NOW, limit=10, lease=LEASE)
    assert [m.id for m in claimed] == ids and all(m.attempts == 1 for m in claimed)
    assert store.claim_outbound_messages(owner="b", now=NOW, limit=10, lease=LEASE) == []
    # Only the holder may record the outcome.
    assert store.record_outbound_relayed(relayed=[(ids[0], "250")], owner="b") == [False]
    assert store.record_outbound_relayed(relayed=[(ids[0], "250 ok")], owner="a") == [True]
    # After the lease ran out (the holder died), another worker takes the rest over.
    later = NOW + LEASE
    retaken = store.claim_outbound_messages(owner="b", now=later, limit=10, lease=LEASE)
    assert [(m.id, m.state, m.attempts) for m in retaken] == [
        (ids[0], "relayed", 1),
        (ids[1], "queued", 2),
    ]
    assert not store.defer_outbound_message(
        outbound_id=ids[1], owner="a", error="late", next_attempt_at=later
    )
    assert store.defer_outbound_message(
        outbound_id=ids[1],
        owner="b",
        error="451 later",
        next_attempt_at=later + LEASE,
        recipients=["b@example.net"],
    )
    deferred = store.get_outbound_message(outbound_id=ids[1])
    assert deferred.recipients == ("b@example.net",) and deferred.last_error == "451 later"


def test_sent_copy_is_filed_once_and_marks_the_message_sent(store: MailStore) -> None:
    user_id, ids = _queue(store, 3)
    store.claim_outbound_messages(owner="a", now=NOW, limit=3, lease=LEASE)
    store.record_outbound_relayed(relayed=[(i, "250") for i in ids], owner="a")
    assert store.file_sent_copies(outbound_ids=ids[:2], now=NOW) == 2
    # Again (a crash after the append, before the state change): no second copy.
    assert store.file_sent_copies(outbound_ids=ids, now=NOW) == 1
    sent = store.get_mailbox(user_id=user_id, name="Sent")
    assert store.mailbox_status(mailbox_id=sent.id).messages == 3
    assert {store.get_outbound_message(outbound_id=i).state for i in ids} == {"sent"}
    assert store.list_outbound_messages() == []


def test_retry_and_drop(store: MailStore) -> None:
    _, (first, second) = _queue(store, 2, now=NOW + timedelta(hours=1))
    retried = store.retry_outbound_message(outbound_id=first, now=NOW, lifetime=LEASE)
    assert retried.next_attempt_at == NOW
    assert [
        m.id for m in store.claim_outbound_messages(owner="a", now=NOW, limit=5, lease=LEASE)
    ] == [first]
    store.drop_outbound_message(outbound_id=second, now=NOW)
    with pytest.raises(InvalidOperationError):
        store.drop_outbound_message(outbound_id=second, now=NOW)
    store.finish_outbound_message(outbound_id=first, state="bounced", now=NOW, error="550")
    requeued = store.retry_outbound_message(outbound_id=first, now=NOW, lifetime=LEASE)
    assert requeued.state == "queued" and requeued.expires_at == NOW + LEASE
    with pytest.raises(NotFoundError):
        store.retry_outbound_message(outbound_id=999, now=NOW, lifetime=LEASE)


def test_identities_of_sources_and_relay_targets(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    source = store.add_source(
        user_id=user.id,
        name="work",
        protocol="imap",
        host="imap.work.example",
        port=993,
        security="tls",
        username="Alice@Work.Example",
        secret="source-secret",
        options={"tls_ca_file": "/etc/ca.pem"},
    )
    gmail = store.add_source(
        user_id=user.id,
        name="gmail",
        protocol="imap",
        host="imap.gmail.com",
        port=993,
        security="tls",
        username="alice@gmail.com",
        secret="app-password",
    )
    work, google = (
        store.find_identity(user_id=user.id, address="ALICE@work.example"),
        store.find_identity(user_id=user.id, address="alice@gmail.com"),
    )
    assert work is not None and google is not None
    assert (work.source_id, work.relay_host, work.relay_port, work.relay_security) == (
        source.id,
        "smtp.work.example",
        587,
        "starttls",
    )
    assert work.save_to_source_sent and work.relay_options == {"tls_ca_file": "/etc/ca.pem"}
    # Gmail files submitted mail itself: no second copy in its Sent folder.
    assert google.relay_host == "smtp.gmail.com" and not google.save_to_source_sent
    target = store.read_relay_target(identity_id=work.id)
    assert target.secret == "source-secret" and target.username == "Alice@Work.Example"
    assert target.sent_copy_source is not None and target.sent_copy_source.id == source.id
    assert "source-secret" not in repr(target)
    alias = store.add_identity(
        user_id=user.id, address="me@alias.example", relay_secret="own", relay_username="me"
    )
    assert alias.has_relay_secret and store.read_relay_target(identity_id=alias.id).secret == "own"
    with pytest.raises(NotFoundError):
        store.add_identity(user_id=user.id, address="x@y.example", source_id=gmail.id + 100)
    with pytest.raises(InvalidOperationError):
        store.add_identity(user_id=user.id, address="x@y.example", relay_security="ssl3")
    store.remove_identity(user_id=user.id, address="me@alias.example")
    assert store.find_identity(user_id=user.id, address="me@alias.example") is None


def test_replicas_never_claim_the_same_message(backend_settings: Settings) -> None:
    """Several stores on one database claim concurrently: every message exactly once."""
    stores = [open_store(backend_settings) for _ in range(4)]
    try:
        _, ids = _queue(stores[0], 60)
        claimed: list[list[int]] = [[] for _ in stores]
        barrier = threading.Barrier(len(stores))

        def claim(index: int) -> None:
            barrier.wait()
            while True:
                got = stores[index].claim_outbound_messages(
                    owner=f"replica-{index}", now=NOW, limit=3, lease=LEASE
                )
                if not got:
                    return
                claimed[index].extend(m.id for m in got)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        everything = [queue_id for part in claimed for queue_id in part]
        assert sorted(everything) == ids
    finally:
        for store in stores:
            store.close()


def test_finished_messages_are_pruned_after_retention_with_unshared_blobs(
    store: MailStore,
) -> None:
    user_id, (sent, bounced, dropped, young, pending) = _queue(store, 5)
    blob = {m.id: m.blob_hash for m in store.list_outbound_messages()}
    store.claim_outbound_messages(owner="a", now=NOW, limit=1, lease=LEASE)
    store.record_outbound_relayed(relayed=[(sent, "250")], owner="a")
    store.file_sent_copies(outbound_ids=[sent], now=NOW)
    store.finish_outbound_message(outbound_id=bounced, state="bounced", now=NOW, error="550")
    store.drop_outbound_message(outbound_id=dropped, now=NOW)
    store.finish_outbound_message(outbound_id=young, state="bounced", now=NOW + timedelta(days=2))
    cutoff = NOW + timedelta(days=1)
    assert store.prune_outbound_messages(finished_before=cutoff, blob_grace_seconds=0) == 3
    left = store.list_outbound_messages(states=("queued", "relayed", "sent", "bounced", "dropped"))
    assert {m.id for m in left} == {young, pending}
    for gone in (sent, bounced, dropped):
        with pytest.raises(NotFoundError):
            store.get_outbound_message(outbound_id=gone)
    # The Sent copy still needs the sent message's blob; nothing needs the other two.
    assert store.read_outbound_content(blob_hash=blob[sent]).endswith(b"body 0\r\n")
    for gone in (bounced, dropped):
        assert not store.blobs.path_for(blob[gone]).exists()
    assert store.read_outbound_content(blob_hash=blob[pending])
    assert store.prune_outbound_messages(finished_before=cutoff) == 0
    sent_box = store.get_mailbox(user_id=user_id, name="Sent")
    assert store.mailbox_status(mailbox_id=sent_box.id).messages == 1


def test_pruning_keeps_a_blob_another_queued_message_shares(store: MailStore) -> None:
    _, (first,) = _queue(store, 1)
    _, (second,) = _queue(store, 1, name="other")  # the same bytes, queued by another user
    digest = store.get_outbound_message(outbound_id=first).blob_hash
    assert store.get_outbound_message(outbound_id=second).blob_hash == digest
    store.drop_outbound_message(outbound_id=first, now=NOW)
    assert store.prune_outbound_messages(finished_before=NOW + LEASE, blob_grace_seconds=0) == 1
    assert store.blobs.path_for(digest).exists()
    # A blob written within the grace period stays too (an ingest may be about to use it).
    store.drop_outbound_message(outbound_id=second, now=NOW)
    assert store.prune_outbound_messages(finished_before=NOW + LEASE) == 1
    assert store.blobs.path_for(digest).exists()


def test_held_messages_are_claimed_by_id_or_after_the_hold(store: MailStore) -> None:
    user = store.create_user(name="held", password="pw")
    identity = store.add_identity(user_id=user.id, address="me@example.org")
    content = b"From: me@example.org\r\nSubject: held\r\n\r\nbody\r\n"
    items = [
        OutboundSubmission(
            user_id=user.id,
            identity_id=identity.id,
            sender="me@example.org",
            recipients=("a@example.net",),
            blob=store.name_outbound_blob(content=content),
            message_id_header=f"<held-{n}@example.org>",
        )
        for n in range(2)
    ]
    # The name is the one the blob store gives the file.
    assert store.write_outbound_blob(content=content) == items[0].blob
    first, second = store.queue_outbound_messages(
        items=items, now=NOW, lifetime=timedelta(days=5), hold=timedelta(seconds=30)
    )
    assert store.claim_outbound_messages(owner="a", now=NOW, limit=10, lease=LEASE) == []
    (claimed,) = store.claim_outbound_messages(
        owner="a", now=NOW, limit=10, lease=LEASE, ready=[first]
    )
    assert claimed.id == first and claimed.attempts == 1
    later = NOW + timedelta(seconds=30)
    assert [
        m.id for m in store.claim_outbound_messages(owner="b", now=later, limit=10, lease=LEASE)
    ] == [second]
