"""`NewMessage.adopt`: a message the mailbox already holds joins its entry instead of being
copied, on both backends (UIDVALIDITY resync by content, cross-source dedup by Message-ID)."""

from __future__ import annotations

import pytest

from gateway.store import MailStore, NewMessage, OriginKey, SourceInfo

CC = b"From: boss@example.org\r\nSubject: to both\r\nMessage-ID: <cc@x>\r\n\r\nhi\r\n"


@pytest.fixture
def setup(store: MailStore) -> tuple[int, SourceInfo, SourceInfo]:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    sources = [
        store.add_source(
            user_id=user.id,
            name=name,
            protocol="imap",
            host="127.0.0.1",
            port=143,
            security="none",
            username=name,
            secret="pw",
        )
        for name in ("one", "two")
    ]
    return inbox, sources[0], sources[1]


def _item(
    inbox: int, content: bytes, source: SourceInfo, uid: int, adopt: str | None, uidv: int = 7
) -> NewMessage:
    return NewMessage(
        mailbox_id=inbox,
        content=content,
        flags=["\\Seen"],
        origin=OriginKey(source.id, "INBOX", uidv, uid),
        adopt=adopt,  # type: ignore[arg-type]
    )


def test_message_id_adoption_joins_another_sources_copy_only(
    store: MailStore, setup: tuple[int, SourceInfo, SourceInfo]
) -> None:
    inbox, one, two = setup
    first = store.append_messages(items=[_item(inbox, b"Delivered-To: a\r\n" + CC, one, 1, None)])
    # The same Message-ID through the second account: joins the first entry.
    joined = store.append_messages(
        items=[_item(inbox, b"Delivered-To: b\r\n" + CC, two, 1, "message-id")]
    )
    assert joined[0].adopted and joined[0].uid == first[0].uid
    assert joined[0].message_id == first[0].message_id
    # A second copy within the same account is that account's business: stored.
    own = store.append_messages(items=[_item(inbox, b"X-Copy: 2\r\n" + CC, one, 2, "message-id")])
    assert not own[0].duplicate and own[0].uid > first[0].uid
    # No Message-ID, no adoption; and the adopted origin is a known origin afterwards.
    bare = b"Subject: no id\r\n\r\nx\r\n"
    store.append_messages(items=[_item(inbox, bare, one, 3, None)])
    again = store.append_messages(items=[_item(inbox, bare, two, 2, "message-id")])
    assert not again[0].duplicate
    repeat = store.append_messages(items=[_item(inbox, CC, two, 1, "message-id")])
    assert repeat[0].duplicate and not repeat[0].adopted
    assert len(store.list_entries(mailbox_id=inbox)) == 4


def test_content_adoption_keeps_local_uid_and_flags(
    store: MailStore, setup: tuple[int, SourceInfo, SourceInfo]
) -> None:
    inbox, one, _two = setup
    stored = store.append_messages(
        items=[_item(inbox, CC + bytes([65 + n]), one, n, None) for n in range(1, 11)]
    )
    store.set_flags(mailbox_id=inbox, uids=[stored[4].uid], flags=["\\Flagged"], mode="add")
    # The source renumbered (new UIDVALIDITY): the same bytes come back under new UIDs.
    again = store.append_messages(
        items=[
            _item(inbox, CC + bytes([65 + n]), one, 100 + n, "content", uidv=8)
            for n in range(1, 12)
        ]
    )
    assert [r.adopted for r in again] == [True] * 10 + [False]
    assert [r.uid for r in again[:10]] == [r.uid for r in stored]
    entries = store.list_entries(mailbox_id=inbox)
    assert len(entries) == 11
    assert "\\Flagged" in entries[4].flag_names
