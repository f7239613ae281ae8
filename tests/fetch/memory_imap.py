"""An in-memory IMAP source implementing `ImapPeer`: the sync engine without a socket.

It keeps folders, UIDs, flags and MODSEQs the way RFC 3501/4315/7162 describe and records the
commands it was given, so a test can drive the whole engine (download, flag reconcile,
write-back) in milliseconds and look at the source's state afterwards. Dovecot remains the
authority on the wire (tests/fetch/test_imap_dovecot.py); this is the seam's second user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.fetch.imap_folders import RemoteFolder
from gateway.fetch.imap_peer import (
    AppendedUid,
    CopiedUids,
    FlagAction,
    RemoteMessage,
    SelectedFolder,
    StatusItem,
    TransferCommand,
)
from gateway.fetch.imap_wire import parse_uid_set

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.I | re.M)
DEFAULT_CAPABILITIES = frozenset({"IMAP4REV1", "UIDPLUS", "MOVE", "CONDSTORE", "ENABLE"})


@dataclass
class StoredMessage:
    content: bytes
    flags: set[str]
    modseq: int
    internal_date: datetime = field(default_factory=lambda: datetime(2026, 1, 2, tzinfo=UTC))


@dataclass
class Folder:
    name: str
    attributes: frozenset[str] = frozenset()
    uidvalidity: int = 1
    uidnext: int = 1
    highestmodseq: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)

    def bump(self) -> int:
        self.highestmodseq += 1
        return self.highestmodseq


class MemoryImap:
    """`ImapPeer` over in-memory folders; `commands` lists what the engine asked for."""

    def __init__(self, *, capabilities: Iterable[str] = DEFAULT_CAPABILITIES) -> None:
        self._capabilities = frozenset(c.upper() for c in capabilities)
        self.folders: dict[str, Folder] = {"INBOX": Folder("INBOX")}
        self.selected: Folder | None = None
        self.commands: list[str] = []
        self.closed = 0

    # --- test set-up ------------------------------------------------------------------------

    def add_folder(self, name: str, *attributes: str) -> Folder:
        self.folders[name] = Folder(name, frozenset(attributes), uidvalidity=len(self.folders) + 1)
        return self.folders[name]

    def deliver(self, folder: str, content: bytes, *flags: str) -> int:
        target = self.folders[folder]
        uid = target.uidnext
        target.uidnext += 1
        target.messages[uid] = StoredMessage(content, set(flags), target.bump())
        return uid

    def flags_of(self, folder: str) -> dict[int, set[str]]:
        return {uid: m.flags for uid, m in self.folders[folder].messages.items()}

    # --- ImapPeer -------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        return self._capabilities

    def enable(self, extension: str) -> None:
        self.commands.append(f"ENABLE {extension}")

    def list_folders(self) -> list[RemoteFolder]:
        self.commands.append("LIST")
        return [RemoteFolder(f.name, "/", f.attributes) for f in self.folders.values()]

    def folder_status(self, folder: str, items: Sequence[StatusItem]) -> dict[StatusItem, int]:
        self.commands.append(f"STATUS {folder}")
        found = self.folders[folder]
        values: dict[StatusItem, int] = {
            "UIDVALIDITY": found.uidvalidity,
            "UIDNEXT": found.uidnext,
            "HIGHESTMODSEQ": found.highestmodseq,
            "MESSAGES": len(found.messages),
        }
        return {item: values[item] for item in items}

    def select_folder(self, folder: str) -> SelectedFolder:
        self.commands.append(f"SELECT {folder}")
        self.selected = self.folders[folder]
        return SelectedFolder(
            uidvalidity=self.selected.uidvalidity,
            exists=len(self.selected.messages),
            highestmodseq=self.selected.highestmodseq,
            permanent_flags=frozenset({"\\Seen", "\\Flagged", "\\Deleted", "\\*"}),
        )

    def search_uids(self, uid_range: str | None = None) -> list[int]:
        self.commands.append(f"UID SEARCH {uid_range or 'ALL'}")
        uids = sorted(self._folder().messages)
        if uid_range is None:
            return uids
        return [uid for uid in uids if uid in self._expand(uid_range)] or uids[-1:]

    def fetch_metadata(self, uid_set: str) -> dict[int, RemoteMessage]:
        self.commands.append(f"UID FETCH {uid_set} metadata")
        found = {}
        for uid, message in self._messages(uid_set):
            match = _MESSAGE_ID.search(message.content.split(b"\r\n\r\n", 1)[0])
            found[uid] = RemoteMessage(
                size=len(message.content),
                flags=tuple(sorted(message.flags)),
                internal_date=message.internal_date,
                message_id=match.group(1).decode().strip() if match else None,
            )
        return found

    def fetch_bodies(self, uid_set: str) -> dict[int, bytes]:
        self.commands.append(f"UID FETCH {uid_set} BODY.PEEK[]")
        return {uid: message.content for uid, message in self._messages(uid_set)}

    def fetch_body_chunk(self, uid: int, offset: int, length: int) -> bytes:
        message = self._folder().messages.get(uid)
        return message.content[offset : offset + length] if message else b""

    def fetch_flags(
        self, uid_set: str, *, changed_since: int | None = None
    ) -> dict[int, tuple[str, ...]]:
        self.commands.append(f"UID FETCH {uid_set} FLAGS")
        return {
            uid: tuple(sorted(message.flags))
            for uid, message in self._messages(uid_set)
            if changed_since is None or message.modseq > changed_since
        }

    def store_flags(self, uid_set: str, action: FlagAction, flags: Iterable[str]) -> None:
        names = set(flags)
        self.commands.append(f"UID STORE {uid_set} {action} {' '.join(sorted(names))}")
        folder = self._folder()
        for _uid, message in self._messages(uid_set):
            message.flags = message.flags | names if action == "+FLAGS" else message.flags - names
            message.modseq = folder.bump()

    def transfer(self, command: TransferCommand, uid_set: str, folder: str) -> CopiedUids | None:
        self.commands.append(f"UID {command} {uid_set} {folder}")
        source, target = self._folder(), self.folders[folder]
        mapping: dict[int, int] = {}
        for uid, message in list(self._messages(uid_set)):
            mapping[uid] = target.uidnext
            target.messages[target.uidnext] = StoredMessage(
                message.content, set(message.flags), target.bump(), message.internal_date
            )
            target.uidnext += 1
            if command == "MOVE":
                del source.messages[uid]
        return CopiedUids(target.uidvalidity, mapping)

    def expunge_uids(self, uid_set: str) -> None:
        self.commands.append(f"UID EXPUNGE {uid_set}")
        folder = self._folder()
        for uid, message in list(self._messages(uid_set)):
            if "\\Deleted" in message.flags:
                del folder.messages[uid]

    def append(
        self, folder: str, content: bytes, *, flags: Sequence[str], internal_date: datetime | None
    ) -> AppendedUid | None:
        self.commands.append(f"APPEND {folder}")
        uid = self.deliver(folder, content, *flags)
        return AppendedUid(self.folders[folder].uidvalidity, uid)

    def create_folder(self, folder: str) -> None:
        self.commands.append(f"CREATE {folder}")
        self.add_folder(folder)

    def noop(self) -> None:
        self.commands.append("NOOP")

    def discard_unsolicited(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1

    # --- internals --------------------------------------------------------------------------

    def _folder(self) -> Folder:
        if self.selected is None:
            raise AssertionError("command needs a selected folder")
        return self.selected

    def _expand(self, uid_set: str) -> set[int]:
        top = max(self._folder().messages, default=0)
        wanted: set[int] = set()
        for part in uid_set.split(","):
            low, _, high = part.partition(":")
            first = top if low == "*" else int(low)
            last = first if not high else (top if high == "*" else int(high))
            wanted.update(parse_uid_set(f"{min(first, last)}:{max(first, last)}"))
        return wanted

    def _messages(self, uid_set: str) -> list[tuple[int, StoredMessage]]:
        wanted = self._expand(uid_set)
        return [(uid, m) for uid, m in sorted(self._folder().messages.items()) if uid in wanted]
