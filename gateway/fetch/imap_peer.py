"""What the IMAP sync engine asks of a logged-in connection to a source: the `ImapPeer` seam.

The engine (`imap_source.py` and the modules it drives) depends on this Protocol only, so it
runs the same against the real facade over IMAPClient (`imap_client.py`, the one module that
knows IMAPClient's and imaplib's internals) and against an in-memory fake in the tests. Every
method is one IMAP command or a well-defined pair of them; results are small typed values,
never IMAPClient's response dicts. UID sets are compact strings (`1:3,7`, `imap_wire.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from gateway.fetch.imap_folders import RemoteFolder

FlagAction = Literal["+FLAGS", "-FLAGS"]
TransferCommand = Literal["COPY", "MOVE"]
StatusItem = Literal["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ", "MESSAGES"]


@dataclass(frozen=True)
class RemoteMessage:
    """What a source says about one message before it is downloaded."""

    size: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    message_id: str | None = None


@dataclass(frozen=True)
class SelectedFolder:
    """The parts of a SELECT answer the sync reads (RFC 3501 §6.3.1, RFC 7162 §3.1.2.1)."""

    uidvalidity: int
    exists: int
    highestmodseq: int
    permanent_flags: frozenset[str]


@dataclass(frozen=True)
class CopiedUids:
    """A COPYUID answer (RFC 4315 §3): the destination's UIDVALIDITY and old → new UIDs."""

    uidvalidity: int
    new_uids: dict[int, int]


@dataclass(frozen=True)
class AppendedUid:
    """An APPENDUID answer (RFC 4315 §3): where an uploaded message now lives."""

    uidvalidity: int
    uid: int


class ImapPeer(Protocol):
    """A logged-in IMAP connection to a source, as the sync engine uses it."""

    @property
    def capabilities(self) -> frozenset[str]:
        """Upper-case capability names after login."""
        ...

    def enable(self, extension: str) -> None:
        """ENABLE (RFC 5161), e.g. CONDSTORE."""

    def list_folders(self) -> list[RemoteFolder]:
        """LIST "" "*" with names decoded (modified UTF-7)."""
        ...

    def folder_status(self, folder: str, items: Sequence[StatusItem]) -> dict[StatusItem, int]:
        """STATUS; items the server left out are absent."""
        ...

    def select_folder(self, folder: str) -> SelectedFolder:
        """SELECT read-write."""
        ...

    def search_uids(self, uid_range: str | None = None) -> list[int]:
        """UID SEARCH UID <range>, or UID SEARCH ALL without a range."""
        ...

    def fetch_metadata(self, uid_set: str) -> dict[int, RemoteMessage]:
        """Size, flags, INTERNALDATE and Message-ID, without setting \\Seen."""
        ...

    def fetch_bodies(self, uid_set: str) -> dict[int, bytes]:
        """`BODY.PEEK[]` of each message (never sets \\Seen)."""
        ...

    def fetch_body_chunk(self, uid: int, offset: int, length: int) -> bytes:
        """A partial `BODY.PEEK[]<offset.length>`; empty past the end."""
        ...

    def fetch_flags(
        self, uid_set: str, *, changed_since: int | None = None
    ) -> dict[int, tuple[str, ...]]:
        """FLAGS of each message (only those changed since a MODSEQ with CONDSTORE)."""
        ...

    def store_flags(self, uid_set: str, action: FlagAction, flags: Iterable[str]) -> None:
        """UID STORE <set> +FLAGS.SILENT / -FLAGS.SILENT."""

    def transfer(self, command: TransferCommand, uid_set: str, folder: str) -> CopiedUids | None:
        """UID COPY or UID MOVE; the COPYUID mapping, or None without UIDPLUS."""
        ...

    def expunge_uids(self, uid_set: str) -> None:
        """UID EXPUNGE (RFC 4315 §2.1): only these, never another client's \\Deleted ones."""

    def append(
        self, folder: str, content: bytes, *, flags: Sequence[str], internal_date: datetime | None
    ) -> AppendedUid | None:
        """APPEND; the new UID when the server says (UIDPLUS)."""
        ...

    def create_folder(self, folder: str) -> None:
        """CREATE."""

    def noop(self) -> None:
        """NOOP: proves the connection alive."""

    def discard_unsolicited(self) -> None:
        """Forget untagged responses that arrived between commands (idle time)."""

    def close(self) -> None:
        """LOGOUT if the peer still answers, else drop the socket; never raises."""
