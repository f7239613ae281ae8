"""The IMAP sync engine against the in-memory `ImapPeer` (no socket, no Dovecot): the seam
works, and the engine's contract holds on it — download once, \\Seen never set by a download,
flags both ways, removals written back."""

from __future__ import annotations

from functools import partial

from gateway.fetch.imap_peer import ImapPeer
from gateway.fetch.imap_source import sync_imap_source
from gateway.store import MailStore, SourceInfo
from tests.fetch.helpers import add_imap_source, inbox_contents
from tests.fetch.memory_imap import MemoryImap


def message(number: int) -> bytes:
    return f"Subject: m{number}\r\nMessage-ID: <m{number}@t>\r\n\r\nbody {number}\r\n".encode()


def source_for(store: MailStore, **options: object) -> SourceInfo:
    return add_imap_source(store, port=9, username="u", password="pw", options=dict(options))


def sync(store: MailStore, source: SourceInfo, remote: MemoryImap) -> None:
    def open_peer(_source: SourceInfo, peer: ImapPeer) -> ImapPeer:
        return peer

    sync_imap_source(store, source, open_peer=partial(open_peer, peer=remote))


def test_first_sync_downloads_everything_once_and_never_sets_seen(sqlite_store: MailStore) -> None:
    remote = MemoryImap()
    for number in range(5):
        remote.deliver("INBOX", message(number))
    source = source_for(sqlite_store)
    sync(sqlite_store, source, remote)
    contents = inbox_contents(sqlite_store)
    assert [content for content, _ in contents] == [message(n) for n in range(5)]
    assert all("$Src-isp" in keywords for _, keywords in contents)
    assert all(not flags for flags in remote.flags_of("INBOX").values())
    remote.commands.clear()
    sync(sqlite_store, source, remote)
    assert len(inbox_contents(sqlite_store)) == 5
    # The idle poll: one STATUS says nothing changed, no SELECT and no FETCH.
    assert remote.commands == ["ENABLE CONDSTORE", "LIST", "STATUS INBOX"]
    assert remote.closed == 2


def test_flags_travel_both_ways(sqlite_store: MailStore) -> None:
    remote = MemoryImap()
    first = remote.deliver("INBOX", message(1))
    remote.deliver("INBOX", message(2))
    source = source_for(sqlite_store)
    sync(sqlite_store, source, remote)
    remote.store_flags(str(first), "+FLAGS", ["\\Flagged"])
    inbox = sqlite_store.get_mailbox(user_id=source.user_id, name="INBOX")
    [one, two] = sqlite_store.list_entries(mailbox_id=inbox.id)
    sqlite_store.set_flags(mailbox_id=inbox.id, uids=[two.uid], flags=["\\Seen"], mode="add")
    sync(sqlite_store, source, remote)
    [one, two] = sqlite_store.list_entries(mailbox_id=inbox.id)
    assert "\\Flagged" in one.flag_names
    assert remote.flags_of("INBOX")[2] == {"\\Seen"}


def test_local_delete_moves_the_message_to_the_source_trash(sqlite_store: MailStore) -> None:
    remote = MemoryImap()
    remote.add_folder("Trash", "\\Trash")
    remote.deliver("INBOX", message(1))
    source = source_for(sqlite_store)
    sync(sqlite_store, source, remote)
    inbox = sqlite_store.get_mailbox(user_id=source.user_id, name="INBOX")
    [entry] = sqlite_store.list_entries(mailbox_id=inbox.id)
    sqlite_store.set_flags(mailbox_id=inbox.id, uids=[entry.uid], flags=["\\Deleted"], mode="add")
    sqlite_store.expunge(mailbox_id=inbox.id)
    sync(sqlite_store, source, remote)
    assert remote.flags_of("INBOX") == {}
    assert [m.content for m in remote.folders["Trash"].messages.values()] == [message(1)]
