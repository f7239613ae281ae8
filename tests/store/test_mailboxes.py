"""Mailbox tree operations and their RFC 3501 semantics."""

from __future__ import annotations

import pytest

from gateway.store import (
    AlreadyExistsError,
    InvalidOperationError,
    LimitExceededError,
    MailboxLimits,
    MailStore,
    NotFoundError,
)

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


def _names(store: MailStore, user_id: int) -> set[str]:
    return {m.name for m in store.list_mailboxes(user_id=user_id)}


def test_create_makes_parents_and_rejects_duplicates(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="Lists/python/dev")
    assert {"Lists", "Lists/python", "Lists/python/dev"} <= _names(store, user.id)
    with pytest.raises(AlreadyExistsError):
        store.create_mailbox(user_id=user.id, name="Lists/python/")
    with pytest.raises(AlreadyExistsError):
        store.create_mailbox(user_id=user.id, name="inbox")
    for bad in ("", "a//b", "/", "bad\x01name"):
        with pytest.raises(InvalidOperationError):
            store.create_mailbox(user_id=user.id, name=bad)


def test_recreated_mailbox_gets_new_uidvalidity(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    first = store.create_mailbox(user_id=user.id, name="Work")
    store.delete_mailbox(user_id=user.id, name="Work")
    second = store.create_mailbox(user_id=user.id, name="Work")
    assert second.uidvalidity > first.uidvalidity


def test_delete_keeps_inferiors_and_refuses_inbox(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="A/B")
    box = store.get_mailbox(user_id=user.id, name="A")
    store.append_message(mailbox_id=box.id, content=MESSAGE)
    store.delete_mailbox(user_id=user.id, name="A")
    # RFC 3501 §6.3.4: A loses its messages and becomes \Noselect while A/B exists.
    assert {"A", "A/B"} <= _names(store, user.id)
    (kept,) = [m for m in store.list_mailboxes(user_id=user.id) if m.name == "A"]
    assert kept.noselect and store.list_entries(mailbox_id=kept.id) == []
    with pytest.raises(NotFoundError):
        store.get_mailbox(user_id=user.id, name="A")
    with pytest.raises(InvalidOperationError):
        store.delete_mailbox(user_id=user.id, name="A")  # \Noselect with inferiors
    store.delete_mailbox(user_id=user.id, name="A/B")
    store.delete_mailbox(user_id=user.id, name="A")
    assert not {"A", "A/B"} & _names(store, user.id)
    with pytest.raises(InvalidOperationError):
        store.delete_mailbox(user_id=user.id, name="INBOX")
    with pytest.raises(NotFoundError):
        store.delete_mailbox(user_id=user.id, name="missing")


def test_rename_moves_inferiors(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="Old/child/grandchild")
    store.rename_mailbox(user_id=user.id, old_name="Old", new_name="New/Place")
    names = _names(store, user.id)
    assert {"New", "New/Place", "New/Place/child", "New/Place/child/grandchild"} <= names
    assert not any(n.startswith("Old") for n in names)
    with pytest.raises(InvalidOperationError):
        store.rename_mailbox(user_id=user.id, old_name="New", new_name="New/inside")
    with pytest.raises(AlreadyExistsError):
        store.rename_mailbox(user_id=user.id, old_name="New", new_name="Sent")


def test_rename_inbox_moves_messages_and_leaves_inbox_empty(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    for _ in range(3):
        store.append_message(mailbox_id=inbox.id, content=MESSAGE, flags=["\\Seen"])
    moved = store.rename_mailbox(user_id=user.id, old_name="INBOX", new_name="Old Inbox")
    assert store.mailbox_status(mailbox_id=inbox.id).messages == 0
    status = store.mailbox_status(mailbox_id=moved.id)
    assert status.messages == 3
    assert [e.uid for e in store.list_entries(mailbox_id=moved.id)] == [1, 2, 3]
    assert all(e.flag_names == ["\\Seen"] for e in store.list_entries(mailbox_id=moved.id))
    # What RENAME reports is the renamed mailbox as committed, counters included.
    assert moved.uidnext == status.uidnext == 4
    # New mail to INBOX continues above the UIDs INBOX already handed out.
    assert store.append_message(mailbox_id=inbox.id, content=MESSAGE).uid == 4


def test_subscriptions_and_status(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.set_subscribed(user_id=user.id, name="Junk", subscribed=False)
    subscribed = set(store.list_subscriptions(user_id=user.id))
    assert "Junk" not in subscribed and "INBOX" in subscribed
    # RFC 3501 §6.3.9: deleting a mailbox leaves its subscription; RENAME carries it along.
    store.create_mailbox(user_id=user.id, name="Old/Child")
    store.create_mailbox(user_id=user.id, name="Quiet", subscribe=False)
    store.delete_mailbox(user_id=user.id, name="Trash")
    store.rename_mailbox(user_id=user.id, old_name="Old", new_name="New")
    assert {"Trash", "New", "New/Child"} <= set(store.list_subscriptions(user_id=user.id))
    assert not {"Old", "Old/Child", "Quiet"} & set(store.list_subscriptions(user_id=user.id))
    store.set_subscribed(user_id=user.id, name="Trash", subscribed=False)
    assert "Trash" not in store.list_subscriptions(user_id=user.id)
    with pytest.raises(NotFoundError):
        store.set_subscribed(user_id=user.id, name="Trash", subscribed=True)
    inbox = store.get_mailbox(user_id=user.id, name="inbox")
    store.append_message(mailbox_id=inbox.id, content=MESSAGE, flags=["\\Seen"])
    store.append_message(mailbox_id=inbox.id, content=MESSAGE + b"more")
    status = store.mailbox_status(mailbox_id=inbox.id)
    assert (status.messages, status.unseen, status.uidnext) == (2, 1, 3)
    assert status.size == 2 * len(MESSAGE) + 4


def test_creating_a_noselect_name_makes_it_a_mailbox_again(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="P/Q")
    store.delete_mailbox(user_id=user.id, name="P")
    revived = store.create_mailbox(user_id=user.id, name="P")
    assert not revived.noselect
    assert store.get_mailbox(user_id=user.id, name="P").id == revived.id


def test_rename_onto_a_clash_among_inferiors_is_a_clear_error(store: MailStore) -> None:
    """Issue 13 finding 8: this was an uncaught IntegrityError (NO [SERVERBUG])."""
    user = store.create_user(name="alice", password="pw")
    store.create_mailbox(user_id=user.id, name="a/b")
    store.create_mailbox(user_id=user.id, name="d/b")
    store.delete_mailbox(user_id=user.id, name="d")
    with pytest.raises(AlreadyExistsError):
        store.rename_mailbox(user_id=user.id, old_name="a", new_name="d")
    store.delete_mailbox(user_id=user.id, name="d/b")
    store.delete_mailbox(user_id=user.id, name="d")
    store.create_mailbox(user_id=user.id, name="x/b")
    store.create_mailbox(user_id=user.id, name="y")
    store.create_mailbox(user_id=user.id, name="z/y/b")
    with pytest.raises(AlreadyExistsError):
        store.rename_mailbox(user_id=user.id, old_name="z/y", new_name="x")
    assert {"a/b", "x/b", "z/y/b"} <= _names(store, user.id)


@pytest.mark.parametrize("name", ["..", "a/../b", "a/.", "./a", "x/.."])
def test_dot_levels_are_refused_at_create_and_rename(store: MailStore, name: str) -> None:
    user = store.create_user(name="alice", password="pw")
    with pytest.raises(InvalidOperationError):
        store.create_mailbox(user_id=user.id, name=name)
    store.create_mailbox(user_id=user.id, name="fine")
    with pytest.raises(InvalidOperationError):
        store.rename_mailbox(user_id=user.id, old_name="fine", new_name=name)
    assert not any(".." in n.split("/") for n in _names(store, user.id))


def test_mailbox_limits_hold_at_create_and_rename(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    limits = MailboxLimits(max_mailboxes=10, max_depth=3, max_name_length=20)
    start = len(_names(store, user.id))
    with pytest.raises(LimitExceededError):
        store.create_mailbox(user_id=user.id, name="a/b/c/d", limits=limits)
    with pytest.raises(LimitExceededError):
        store.create_mailbox(user_id=user.id, name="x" * 21, limits=limits)
    store.create_mailbox(user_id=user.id, name="a/b/c", limits=limits)
    for number in range(10 - start - 3):
        store.create_mailbox(user_id=user.id, name=f"m{number}", limits=limits)
    with pytest.raises(LimitExceededError):
        store.create_mailbox(user_id=user.id, name="one-too-many", limits=limits)
    with pytest.raises(LimitExceededError):
        store.rename_mailbox(user_id=user.id, old_name="m0", new_name="new/parent", limits=limits)
    with pytest.raises(LimitExceededError):
        store.rename_mailbox(user_id=user.id, old_name="a", new_name="p/q", limits=limits)
    assert len(_names(store, user.id)) == 10
