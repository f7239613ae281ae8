"""IMAP sources against a real Dovecot: initial sync, both-way flags and deletions, moves,
UIDVALIDITY reset, dedup across sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from imapclient import IMAPClient

from gateway.fetch import source_keyword
from gateway.fetch.runner import run_source_sync
from gateway.store import FolderKey, MailStore
from tests.fetch.helpers import add_imap_source, add_pop3_source, digests
from tests.support.corpus import generate_corpus, malformed_corpus
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.system
USERS = [
    ("bulk", "pw"),
    ("moves", "pw"),
    ("keep", "pw"),
    ("cc1", "pw"),
    ("cc2", "pw"),
]


@pytest.fixture(scope="module", autouse=True)
def _accounts(dovecot_module: DovecotServer) -> None:
    for name, password in USERS:
        dovecot_module.add_user(name, password)


def _numbered(count: int, start: int = 0, tag: str = "m") -> list[bytes]:
    return [
        f"From: n{n}@example.org\r\nSubject: {tag} {n}\r\nMessage-ID: <{tag}{n}@t>\r\n\r\n"
        f"body {n}\r\n".encode()
        for n in range(start, start + count)
    ]


def _remote(dovecot: DovecotServer, user: str) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10)
    client.login(user, "pw")
    return client


def _mailbox_contents(store: MailStore, name: str, user_name: str = "alice") -> list[bytes]:
    user = store.get_user(name=user_name)
    mailbox = store.get_mailbox(user_id=user.id, name=name)
    contents = []
    for entry in store.list_entries(mailbox_id=mailbox.id):
        with store.open_message(message_id=entry.message_id) as handle:
            contents.append(handle.read())
    return contents


def _local_flags(store: MailStore, name: str) -> dict[bytes, frozenset[str]]:
    """Subject line → flags (without the source keyword), for the messages of a mailbox."""
    user = store.get_user(name="alice")
    mailbox = store.get_mailbox(user_id=user.id, name=name)
    found: dict[bytes, frozenset[str]] = {}
    for entry in store.list_entries(mailbox_id=mailbox.id):
        with store.open_message(message_id=entry.message_id) as handle:
            subject = next(
                line for line in handle.read().splitlines() if line.startswith(b"Subject:")
            )
        found[subject] = frozenset(f for f in entry.flag_names if not f.startswith("$Src-"))
    return found


def _remote_flags(client: IMAPClient, folder: str) -> dict[bytes, frozenset[str]]:
    client.select_folder(folder)
    data = client.fetch(client.search(), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return {
        values[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip(): frozenset(
            f.decode() for f in values[b"FLAGS"] if f != b"\\Recent"
        )
        for values in data.values()
    }


def _local_uid(store: MailStore, folder: str, subject: bytes) -> int:
    user = store.get_user(name="alice")
    mailbox = store.get_mailbox(user_id=user.id, name=folder)
    for entry in store.list_entries(mailbox_id=mailbox.id):
        with store.open_message(message_id=entry.message_id) as handle:
            if subject in handle.read():
                return entry.uid
    raise AssertionError(f"{subject!r} not in {folder}")


def _device_adds_flags(store: MailStore, folder: str, subject: bytes, flags: list[str]) -> None:
    """What a client's `STORE +FLAGS` on the unified mailbox does."""
    mailbox = store.get_mailbox(user_id=store.get_user(name="alice").id, name=folder)
    uid = _local_uid(store, folder, subject)
    store.set_flags(mailbox_id=mailbox.id, uids=[uid], flags=flags, mode="add", actor="imap")


def _device_deletes(store: MailStore, folder: str, subject: bytes) -> None:
    """What a client's `STORE +FLAGS (\\Deleted)` then `UID EXPUNGE` does."""
    _device_adds_flags(store, folder, subject, ["\\Deleted"])
    mailbox = store.get_mailbox(user_id=store.get_user(name="alice").id, name=folder)
    store.expunge(mailbox_id=mailbox.id, uids=[_local_uid(store, folder, subject)], actor="imap")


def test_initial_sync_of_2000_varied_messages_maps_folders_and_is_exact(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    corpus = list(generate_corpus(1900, seed=7, max_size=300_000))
    corpus += [raw for _, raw in malformed_corpus() if raw]
    inbox, rest = corpus[:1500], corpus[1500:]
    dovecot_module.load_maildir("bulk", "INBOX", inbox)
    dovecot_module.load_maildir("bulk", "Sent", rest[:100])
    dovecot_module.load_maildir("bulk", "Projects/2026", rest[100:])
    remote = _remote(dovecot_module, "bulk")
    remote.select_folder("INBOX")
    remote.add_flags([1, 2, 3], [b"\\Seen", b"$Important"])
    remote.add_flags([4], [b"\\Flagged", b"\\Answered"])
    source = add_imap_source(
        sqlite_store, port=dovecot_module.imap_port, username="bulk", password="pw", name="work"
    )

    report = run_source_sync(sqlite_store, source)

    assert report.fetched == len(corpus)
    # Byte for byte what the source serves (Dovecot turns bare LF into CRLF on the wire).
    for remote_name, local_name, count in (
        ("INBOX", "INBOX", len(inbox)),
        ("Sent", "Sent", 100),
        ("Projects/2026", "work/Projects/2026", len(rest) - 100),
    ):
        served = _served(remote, remote_name)
        assert len(served) == count
        assert digests(_mailbox_contents(sqlite_store, local_name)) == digests(served)
    user = sqlite_store.get_user(name="alice")
    entries = sqlite_store.list_entries(
        mailbox_id=sqlite_store.get_mailbox(user_id=user.id, name="INBOX").id
    )
    assert set(entries[0].flag_names) == {"\\Seen", "$Important", source_keyword("work")}
    assert set(entries[3].flag_names) == {"\\Flagged", "\\Answered", source_keyword("work")}
    assert all(source_keyword("work") in e.keywords for e in entries)
    # Fetching never changed the source: BODY.PEEK left \Seen alone.
    remote.select_folder("INBOX")
    assert len(remote.search(["SEEN"])) == 3

    again = run_source_sync(sqlite_store, source)
    assert again.fetched == 0
    assert len(_mailbox_contents(sqlite_store, "INBOX")) == len(inbox)
    # Stored before its search text was decoded (gateway serve's indexer does that after).
    assert sqlite_store.count_pending_search_text() > len(corpus) // 2
    sqlite_store.index_all_search_text()
    assert sqlite_store.count_pending_search_text() == 0


def _served(client: IMAPClient, folder: str) -> list[bytes]:
    client.select_folder(folder, readonly=True)
    return [v[b"BODY[]"] for v in client.fetch(client.search(), ["BODY.PEEK[]"]).values()]


def test_incremental_changes_on_both_sides_converge_in_one_cycle(
    store: MailStore, dovecot: DovecotServer
) -> None:
    """On SQLite and on PostgreSQL, with a Dovecot of its own."""
    dovecot.add_user("inc", "pw")
    synced = add_imap_source(
        store, port=dovecot.imap_port, username="inc", password="pw", name="work"
    )
    dovecot.load_maildir("inc", "INBOX", _numbered(10))
    dovecot.load_maildir("inc", "Trash", [])
    run_source_sync(store, synced)
    remote = _remote(dovecot, "inc")
    remote.select_folder("INBOX")

    # At the source: a new message, flags changed, one message deleted.
    remote.append("INBOX", _numbered(1, 10)[0], flags=[b"\\Flagged"])
    remote.add_flags(remote.search(["HEADER", "Message-ID", "<m1@t>"]), [b"\\Seen"])
    remote.delete_messages(remote.search(["HEADER", "Message-ID", "<m2@t>"]))
    remote.expunge()
    # Locally (a device): flags changed, a keyword added, one message deleted.
    _device_adds_flags(store, "INBOX", b"Subject: m 3\r", ["\\Answered", "$Forwarded"])
    _device_deletes(store, "INBOX", b"Subject: m 4\r")

    report = run_source_sync(store, synced)

    assert report.fetched == 1
    local = _local_flags(store, "INBOX")
    assert _remote_flags(remote, "INBOX") == local
    assert b"Subject: m 10" in local and local[b"Subject: m 10"] == {"\\Flagged"}
    assert local[b"Subject: m 1"] == {"\\Seen"}
    assert local[b"Subject: m 3"] == {"\\Answered", "$Forwarded"}
    assert b"Subject: m 2" not in local and b"Subject: m 4" not in local
    # The local deletion went to the source's Trash, not a hard delete.
    assert set(_remote_flags(remote, "Trash")) == {b"Subject: m 4"}
    assert set(_local_flags(store, "Trash")) == set()
    # A second cycle finds nothing to do and changes nothing.
    quiet = run_source_sync(store, synced)
    assert (quiet.fetched, quiet.flags_pulled, quiet.flags_pushed) == (0, 0, 0)
    assert _local_flags(store, "INBOX") == local
    assert set(_local_flags(store, "Trash")) == set()
    # An idle poll costs one STATUS per folder, no SELECT.
    assert quiet.folders_unchanged == quiet.folders == 2
    # ...and still notices a flag changed at the source since, or one changed here.
    remote.select_folder("INBOX")
    remote.add_flags(remote.search(["HEADER", "Message-ID", "<m5@t>"]), [b"$Later"])
    assert run_source_sync(store, synced).flags_pulled == 1
    _device_adds_flags(store, "INBOX", b"Subject: m 6\r", ["\\Seen"])
    assert run_source_sync(store, synced).flags_pushed == 1
    assert _remote_flags(remote, "INBOX") == _local_flags(store, "INBOX")


def test_uidvalidity_reset_resyncs_without_duplicates_or_lost_flags(
    store: MailStore, dovecot: DovecotServer
) -> None:
    dovecot.add_user("reset", "pw")
    messages = _numbered(30, tag="r")
    dovecot.load_maildir("reset", "INBOX", messages)
    source = add_imap_source(store, port=dovecot.imap_port, username="reset", password="pw")
    run_source_sync(store, source)
    user = store.get_user(name="alice")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    flagged = _local_uid(store, "INBOX", b"Subject: r 5\r")
    store.set_flags(
        mailbox_id=inbox.id, uids=[flagged], flags=["\\Flagged"], mode="add", actor="imap"
    )
    before = {e.uid for e in store.list_entries(mailbox_id=inbox.id)}

    # Rebuild the mailbox at the source: same messages, new UIDVALIDITY, plus one more.
    root = dovecot.maildir_path("reset")
    for sub in ("cur", "new"):
        for path in (root / sub).iterdir():
            path.unlink()
    for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"):
        (root / name).unlink(missing_ok=True)
    dovecot.load_maildir("reset", "INBOX", [*messages, *_numbered(1, 30, tag="r")])

    report = run_source_sync(store, source)

    assert report.adopted == 30 and report.fetched == 1
    entries = store.list_entries(mailbox_id=inbox.id)
    assert len(entries) == 31
    assert before <= {e.uid for e in entries}, "existing messages kept their local UIDs"
    assert _local_flags(store, "INBOX")[b"Subject: r 5"] == {"\\Flagged"}
    # The local flag now reached the renumbered source too.
    assert _remote_flags(_remote(dovecot, "reset"), "INBOX")[b"Subject: r 5"] == {"\\Flagged"}
    assert run_source_sync(store, source).fetched == 0


def test_local_moves_follow_to_the_source_and_delete_policy_keep(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    dovecot_module.load_maildir("moves", "INBOX", _numbered(5, tag="v"))
    dovecot_module.load_maildir("moves", "Archive", [])
    dovecot_module.load_maildir("keep", "INBOX", _numbered(3, tag="k"))
    dovecot_module.load_maildir("keep", "Trash", [])
    mover = add_imap_source(
        sqlite_store, port=dovecot_module.imap_port, username="moves", password="pw", name="a"
    )
    keeper = add_imap_source(
        sqlite_store,
        port=dovecot_module.imap_port,
        username="keep",
        password="pw",
        name="b",
        options={"delete_policy": "keep"},
    )
    run_source_sync(sqlite_store, mover)
    run_source_sync(sqlite_store, keeper)
    user = sqlite_store.get_user(name="alice")
    inbox = sqlite_store.get_mailbox(user_id=user.id, name="INBOX")
    archive = sqlite_store.get_mailbox(user_id=user.id, name="Archive")

    moved = _local_uid(sqlite_store, "INBOX", b"Subject: v 1\r")
    sqlite_store.move_messages(
        from_mailbox_id=inbox.id, uids=[moved], to_mailbox_id=archive.id, actor="imap"
    )
    _device_deletes(sqlite_store, "INBOX", b"Subject: k 0\r")

    assert run_source_sync(sqlite_store, mover).moved_at_source == 1
    keep_report = run_source_sync(sqlite_store, keeper)
    assert (keep_report.moved_at_source, keep_report.deleted_at_source) == (0, 0)

    moves = _remote(dovecot_module, "moves")
    assert set(_remote_flags(moves, "Archive")) == {b"Subject: v 1"}
    assert b"Subject: v 1" not in _remote_flags(moves, "INBOX")
    keep = _remote(dovecot_module, "keep")
    assert b"Subject: k 0" in _remote_flags(keep, "INBOX"), "delete_policy keep: left alone"
    # Nothing comes back: the moved message is known in its new folder, the kept one is
    # remembered and never fetched again.
    assert run_source_sync(sqlite_store, mover).fetched == 0
    assert run_source_sync(sqlite_store, keeper).fetched == 0
    assert set(_local_flags(sqlite_store, "Archive")) == {b"Subject: v 1"}
    assert b"Subject: k 0" not in _local_flags(sqlite_store, "INBOX")


def test_same_message_via_two_accounts_appears_once_with_both_origins(
    sqlite_store: MailStore, dovecot_module: DovecotServer
) -> None:
    shared = b"From: boss@example.org\r\nSubject: cc to both\r\nMessage-ID: <cc@x>\r\n\r\nhi\r\n"
    dovecot_module.load_maildir(
        "cc1", "INBOX", [b"Delivered-To: cc1@example.org\r\n" + shared, *_numbered(2, tag="x")]
    )
    dovecot_module.load_maildir("cc2", "INBOX", [b"Delivered-To: cc2@example.org\r\n" + shared])
    first = add_imap_source(
        sqlite_store, port=dovecot_module.imap_port, username="cc1", password="pw", name="one"
    )
    second = add_pop3_source(
        sqlite_store, port=dovecot_module.pop3_port, username="cc2", password="pw", name="two"
    )
    run_source_sync(sqlite_store, first)
    run_source_sync(sqlite_store, second)

    contents = _mailbox_contents(sqlite_store, "INBOX")
    assert sum(b"Subject: cc to both" in c for c in contents) == 1
    assert len(contents) == 3
    # Both origins are kept: neither account fetches it again, and the entry is flagged
    # in both accounts' keywords' place by the first source.
    assert len(sqlite_store.known_uidls(source_id=second.id)) == 1
    folder = sqlite_store.list_source_folders(source_id=first.id)[0]
    assert folder.uidvalidity is not None
    key = FolderKey(first.id, "INBOX", folder.uidvalidity)
    assert len(sqlite_store.known_remote_uids(key)) == 3
    assert run_source_sync(sqlite_store, second).fetched == 0
    assert run_source_sync(sqlite_store, first).fetched == 0
    assert len(_mailbox_contents(sqlite_store, "INBOX")) == 3


def test_messages_filed_on_a_device_into_a_source_folder_reach_the_source(
    store: MailStore, dovecot: DovecotServer
) -> None:
    dovecot.add_user("up", "pw")
    dovecot.load_maildir("up", "INBOX", _numbered(2, tag="u"))
    dovecot.load_maildir("up", "Projects", [])
    source = add_imap_source(
        store, port=dovecot.imap_port, username="up", password="pw", name="work"
    )
    run_source_sync(store, source)
    user = store.get_user(name="alice")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    projects = store.get_mailbox(user_id=user.id, name="work/Projects")
    # A device saves a new message there, and copies one from INBOX.
    store.append_message(
        mailbox_id=projects.id,
        content=b"Subject: u new\r\nMessage-ID: <unew@t>\r\n\r\nfiled\r\n",
        flags=["\\Seen", "$Label1"],
        actor="imap",
    )
    store.copy_messages(
        from_mailbox_id=inbox.id,
        uids=[_local_uid(store, "INBOX", b"Subject: u 0\r")],
        to_mailbox_id=projects.id,
        actor="imap",
    )

    report = run_source_sync(store, source)

    assert report.uploaded == 2 and report.fetched == 0
    remote = _remote_flags(_remote(dovecot, "up"), "Projects")
    assert remote == {b"Subject: u new": {"\\Seen", "$Label1"}, b"Subject: u 0": frozenset()}
    # Known where they went (APPENDUID): nothing comes back as a copy.
    again = run_source_sync(store, source)
    assert (again.fetched, again.uploaded) == (0, 0)
    assert len(store.list_entries(mailbox_id=projects.id)) == 2


def test_a_message_in_two_folders_is_downloaded_once_and_shares_its_content(
    store: MailStore, dovecot: DovecotServer
) -> None:
    """Gmail labels: one message appears in several folders (All Mail itself is skipped)."""
    dovecot.add_user("labels", "pw")
    labelled = _numbered(3, tag="l")
    dovecot.load_maildir("labels", "INBOX", labelled)
    dovecot.load_maildir("labels", "Work", labelled[:2])
    source = add_imap_source(
        store, port=dovecot.imap_port, username="labels", password="pw", name="g"
    )

    report = run_source_sync(store, source)

    assert (report.fetched, report.linked) == (3, 2)
    user = store.get_user(name="alice")
    inbox = store.list_entries(mailbox_id=store.get_mailbox(user_id=user.id, name="INBOX").id)
    work = store.list_entries(mailbox_id=store.get_mailbox(user_id=user.id, name="g/Work").id)
    assert [e.message_id for e in work] == [e.message_id for e in inbox[:2]]
    # Each folder keeps its own flags: flagging in Work leaves the INBOX entry alone.
    remote = _remote(dovecot, "labels")
    remote.select_folder("Work")
    remote.add_flags(remote.search(["HEADER", "Message-ID", "<l0@t>"]), [b"\\Flagged"])
    run_source_sync(store, source)
    assert _local_flags(store, "g/Work")[b"Subject: l 0"] == {"\\Flagged"}
    assert _local_flags(store, "INBOX")[b"Subject: l 0"] == frozenset()
    assert run_source_sync(store, source).linked == 0


def test_a_server_without_condstore_move_or_uidplus_converges_too(
    sqlite_store: MailStore, tmp_path: Path
) -> None:
    """The fallbacks: a FLAGS scan instead of CHANGEDSINCE, COPY + \\Deleted instead of MOVE,
    no UID EXPUNGE. (Dovecot still answers COPY with COPYUID, so the moved message is followed
    into Trash; a server without it gets the message back there by a download.)"""
    plain = "imap_capability = IMAP4rev1 LITERAL+ IDLE NAMESPACE"
    with DovecotServer(extra_config=plain) as dovecot:
        dovecot.add_user("old", "pw")
        dovecot.load_maildir("old", "INBOX", _numbered(8, tag="o"))
        dovecot.load_maildir("old", "Trash", [])
        source = add_imap_source(
            sqlite_store, port=dovecot.imap_port, username="old", password="pw", name="old"
        )
        run_source_sync(sqlite_store, source)
        remote = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10)
        remote.login("old", "pw")
        assert b"CONDSTORE" not in remote.capabilities()
        remote.select_folder("INBOX")
        remote.add_flags(remote.search(["HEADER", "Message-ID", "<o1@t>"]), [b"\\Seen"])
        remote.delete_messages(remote.search(["HEADER", "Message-ID", "<o2@t>"]))
        remote.expunge()
        remote.append("INBOX", _numbered(1, 8, tag="o")[0])
        _device_adds_flags(sqlite_store, "INBOX", b"Subject: o 3\r", ["\\Flagged"])
        _device_deletes(sqlite_store, "INBOX", b"Subject: o 4\r")

        report = run_source_sync(sqlite_store, source)

        assert (report.fetched, report.expunged_locally) == (1, 1)
        local = _local_flags(sqlite_store, "INBOX")
        assert set(local) == {f"Subject: o {n}".encode() for n in (0, 1, 3, 5, 6, 7, 8)}
        assert local[b"Subject: o 1"] == {"\\Seen"} and local[b"Subject: o 3"] == {"\\Flagged"}
        at_source = _remote_flags(remote, "INBOX")
        # Without UIDPLUS the moved original stays, marked \\Deleted, for the owner to expunge.
        assert at_source.pop(b"Subject: o 4") == {"\\Deleted"}
        assert at_source == local
        assert set(_remote_flags(remote, "Trash")) == {b"Subject: o 4"}
        quiet = run_source_sync(sqlite_store, source)
        assert (quiet.fetched, quiet.expunged_locally, quiet.flags_pushed) == (0, 0, 0)
        assert _local_flags(sqlite_store, "INBOX") == local
