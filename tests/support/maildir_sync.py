"""Shared scenario for real sync clients (mbsync, offlineimap) against our IMAP server.

A multi-folder mailbox is loaded straight into the store, the client syncs it to a local
Maildir, and both sides are reduced to the same comparable shape: per folder, a sorted list of
(content digest, system flags). Clients alter bytes (mbsync adds `X-TUID:`, offlineimap may add
`X-OfflineIMAP:`; both rewrite line endings), so content is normalised the same way on both
sides.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from gateway.store import NewMessage
from tests.support.corpus import crlf, generate_corpus
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

# Folder → message count of the standard scenario (1,000 messages in three folders).
FOLDERS = {"INBOX": 600, "Archive": 250, "Projects/2026": 150}
# Maildir info suffix letters (maildir(5)) and the IMAP system flags they stand for.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen"}
_CLIENT_HEADERS = re.compile(rb"^(X-TUID|X-OfflineIMAP): [^\n]*\n", re.MULTILINE | re.IGNORECASE)

Snapshot = dict[str, list[tuple[str, frozenset[str]]]]


def _initial_flags(index: int) -> list[str]:
    """A deterministic spread of system flags over the loaded messages."""
    flags = []
    if index % 3 == 0:
        flags.append("\\Seen")
    if index % 7 == 0:
        flags.append("\\Flagged")
    if index % 11 == 0:
        flags.append("\\Answered")
    if index % 29 == 0:
        flags.append("\\Draft")
    return flags


def load_mailbox(gateway: RunningGateway, folders: dict[str, int] = FOLDERS, seed: int = 11) -> int:
    """Fill the user's folders straight through the store; returns the number loaded."""
    store = gateway.store
    user = store.get_user(name=USER)
    corpus = _varied_messages(sum(folders.values()), seed)
    loaded = 0
    for folder, count in folders.items():
        names = {mailbox.name for mailbox in store.list_mailboxes(user_id=user.id)}
        if folder not in names:
            store.create_mailbox(user_id=user.id, name=folder)
        mailbox = store.get_mailbox(user_id=user.id, name=folder)
        items = [
            NewMessage(mailbox.id, next(corpus), _initial_flags(loaded + offset))
            for offset in range(count)
        ]
        store.append_messages(items=items)
        loaded += count
    return loaded


def _varied_messages(count: int, seed: int) -> Iterator[bytes]:
    """`count` distinct messages: 100 corpus shapes, each made unique by one header.

    Generating the corpus is the slow part of loading (text wrapping), so a hundred shapes are
    reused; a leading `X-Load-Index` header keeps every message's content distinct.
    """
    shapes = list(generate_corpus(min(count, 100), seed=seed, max_size=12_000))
    for index in range(count):
        yield b"X-Load-Index: %d\r\n" % index + shapes[index % len(shapes)]


def normalise(content: bytes) -> bytes:
    """Content as both sides should agree on it.

    Client-added headers go. Line endings are where clients differ (mbsync stores LF and drops
    bare CRs, offlineimap turns bare CRs into LFs), so CR and LF are dropped altogether — after
    the header block is found. NUL becomes 0x80, as our server serves it (RFC 3501 §4.3: no NUL
    in a literal).
    """
    data = content.replace(b"\r\n", b"\n").replace(b"\0", b"\x80")
    head, separator, body = data.partition(b"\n\n")
    head = _CLIENT_HEADERS.sub(b"", head + b"\n")
    return (head + separator + body).replace(b"\r", b"").replace(b"\n", b"")


def digest(content: bytes) -> str:
    return hashlib.sha256(normalise(content)).hexdigest()


def server_snapshot(
    gateway: RunningGateway,
    folders: Iterable[str],
    client_view: Callable[[bytes], bytes] | None = None,
) -> Snapshot:
    """What the store holds: per folder, sorted (digest, system flags) pairs.

    `client_view` renders stored content the way a client rewrites it (offlineimap).
    """
    store = gateway.store
    user = store.get_user(name=USER)
    snapshot: Snapshot = {}
    for folder in folders:
        mailbox = store.get_mailbox(user_id=user.id, name=folder)
        items = []
        for entry in store.list_entries(mailbox_id=mailbox.id):
            with store.open_message(message_id=entry.message_id) as handle:
                content = handle.read()
            if client_view is not None:
                content = client_view(content)
            flags = frozenset(name for name in entry.flag_names if name in MAILDIR_FLAGS.values())
            items.append((digest(content), flags))
        snapshot[folder] = sorted(items, key=_sort_key)
    return snapshot


def maildir_files(folder_dir: Path) -> list[Path]:
    return [path for sub in ("cur", "new") for path in sorted((folder_dir / sub).iterdir())]


def maildir_flags(path: Path) -> frozenset[str]:
    """IMAP system flags from a Maildir file name (`…:2,FRS`); files in new/ have none."""
    _, _, info = path.name.partition(":2,")
    return frozenset(MAILDIR_FLAGS[letter] for letter in info if letter in MAILDIR_FLAGS)


def maildir_snapshot(folder_dirs: dict[str, Path]) -> Snapshot:
    snapshot: Snapshot = {}
    for folder, directory in folder_dirs.items():
        items = [
            (digest(path.read_bytes()), maildir_flags(path))
            for path in maildir_files(directory)
            if "T" not in path.name.partition(":2,")[2]
        ]
        snapshot[folder] = sorted(items, key=_sort_key)
    return snapshot


def _sort_key(item: tuple[str, frozenset[str]]) -> tuple[str, list[str]]:
    return item[0], sorted(item[1])


def assert_same(server: Snapshot, local: Snapshot) -> None:
    """Equal folder by folder, with a readable account of the first difference."""
    assert sorted(server) == sorted(local)
    for folder in server:
        ours, theirs = server[folder], local[folder]
        if ours == theirs:
            continue
        only_server = [item for item in ours if item not in theirs]
        only_local = [item for item in theirs if item not in ours]
        raise AssertionError(
            f"{folder}: server {len(ours)} vs Maildir {len(theirs)}; "
            f"only on server {only_server[:3]}, only in Maildir {only_local[:3]}"
        )


# --- changes on each side ---------------------------------------------------------------------


def set_maildir_flags(path: Path, flags: str) -> Path:
    """Give a Maildir file these flag letters by renaming it into cur/ (maildir(5))."""
    base = path.name.partition(":2,")[0]
    target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    path.rename(target)
    return target


def deliver_to_maildir(folder_dir: Path, content: bytes, flags: str = "") -> Path:
    """Write a new message the way an MDA does: tmp/ first, then rename into new/ or cur/."""
    unique = f"{time.time_ns()}.P{os.getpid()}.{socket.gethostname()}"
    temporary = folder_dir / "tmp" / unique
    temporary.write_bytes(content)
    if flags:
        target = folder_dir / "cur" / f"{unique}:2,{''.join(sorted(flags))}"
    else:
        target = folder_dir / "new" / unique
    temporary.rename(target)
    return target


def new_message(tag: str) -> bytes:
    return crlf(
        f"From: Local Writer <local@example.org>\n"
        f"To: {USER}@example.org\n"
        f"Subject: new on {tag}\n"
        f"Message-ID: <{tag}@sync.example>\n"
        f"Date: Thu, 2 Apr 2026 10:00:00 +0000\n"
        f"\n"
        f"Written on the {tag} side.\n"
    )


@dataclass
class Changes:
    """What one side changed, by (folder, content digest), to check on the other side."""

    flags_added: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    flags_removed: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    added: list[tuple[str, str]] = field(default_factory=list)

    @property
    def net_added(self) -> int:
        return len(self.added) - len(self.deleted)


def assert_changes_applied(snapshot: Snapshot, changes: Changes) -> None:
    """Every change one side made shows in `snapshot` (the other side, after a sync)."""
    present = {(folder, item[0]): item[1] for folder, items in snapshot.items() for item in items}
    for folder, content, flags in changes.flags_added:
        assert flags <= present[folder, content], (folder, content, flags)
    for folder, content, flags in changes.flags_removed:
        assert not flags & present[folder, content], (folder, content, flags)
    for folder, content in changes.deleted:
        assert (folder, content) not in present, (folder, content)
    for folder, content in changes.added:
        assert (folder, content) in present, (folder, content)


def _by_uid(path: Path) -> int:
    """The server UID mbsync and offlineimap put in their file names (`,U=123`)."""
    match = re.search(r",U=(\d+)", path.name)
    return int(match.group(1)) if match else 0


def change_maildir(folder_dirs: dict[str, Path]) -> Changes:
    """Among a folder's first 40 messages: mark some read and flagged, delete some; deliver two."""
    changes = Changes()
    read_and_flagged = frozenset({"\\Seen", "\\Flagged"})
    for folder, directory in folder_dirs.items():
        files = sorted(maildir_files(directory), key=_by_uid)
        for path in files[1:40:4]:
            letters = path.name.partition(":2,")[2]
            path = set_maildir_flags(path, "".join(set(letters) | {"S", "F"}))
            changes.flags_added.append((folder, digest(path.read_bytes()), read_and_flagged))
        for path in files[3:40:8]:
            changes.deleted.append((folder, digest(path.read_bytes())))
            path.unlink()
        for number in range(2):
            content = new_message(f"maildir-{folder.replace('/', '-')}-{number}")
            deliver_to_maildir(directory, content, "S" * number)
            changes.added.append((folder, digest(content)))
    return changes


def change_server(
    gateway: RunningGateway,
    folders: Iterable[str],
    client_view: Callable[[bytes], bytes] | None = None,
) -> Changes:
    """Through IMAP, past a folder's first 40 messages (the Maildir side changes those):
    flag some, unflag some, expunge some, append three."""
    changes = Changes()
    seen_answered = frozenset({"\\Seen", "\\Answered"})
    seen_flagged = frozenset({"\\Seen", "\\Flagged"})
    client = IMAPClient(gateway.host, port=gateway.port, ssl=False, timeout=30)
    client.login(USER, PASSWORD)
    for folder in folders:
        contents = _server_digests(gateway, folder, client_view)
        client.select_folder(folder)
        tail = client.search("ALL")[40:][-60:]
        client.add_flags(tail[0:20:2], [b"\\Seen", b"\\Answered"])
        changes.flags_added.extend((folder, contents[uid], seen_answered) for uid in tail[0:20:2])
        client.remove_flags(tail[1:20:2], [b"\\Seen", b"\\Flagged"])
        changes.flags_removed.extend((folder, contents[uid], seen_flagged) for uid in tail[1:20:2])
        client.add_flags(tail[30:36], [b"\\Deleted"])
        client.expunge()
        changes.deleted.extend((folder, contents[uid]) for uid in tail[30:36])
        for number in range(3):
            content = new_message(f"server-{folder.replace('/', '-')}-{number}")
            client.append(folder, content, flags=[b"\\Flagged"] if number else [])
            changes.added.append((folder, digest(content)))
        client.unselect_folder()
    client.logout()
    return changes


def _server_digests(
    gateway: RunningGateway, folder: str, client_view: Callable[[bytes], bytes] | None
) -> dict[int, str]:
    store = gateway.store
    user = store.get_user(name=USER)
    mailbox = store.get_mailbox(user_id=user.id, name=folder)
    digests = {}
    for entry in store.list_entries(mailbox_id=mailbox.id):
        with store.open_message(message_id=entry.message_id) as handle:
            content = handle.read()
        digests[entry.uid] = digest(client_view(content) if client_view else content)
    return digests
