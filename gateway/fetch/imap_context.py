"""What the parts of one IMAP sync share: the sync-wide context and the selected folder.

`SyncContext` lives for one sync of one source (its peer, budget, report, folder plan);
`OpenFolder` for one selected remote folder (its key, local mailbox and saved position). The
jobs done per folder — downloading new mail (`imap_download.py`), reconciling flags and
deletions from the source (`imap_reconcile.py`), writing local removals and uploads back
(`imap_write_back.py`) — each take an `OpenFolder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.fetch.actors import SourceSyncActor
from gateway.fetch.budget import DailyBudget
from gateway.fetch.imap_folders import FolderPlan, RemoteFolder
from gateway.fetch.imap_peer import ImapPeer
from gateway.store import FolderKey, MailStore, SourceFolderInfo, SourceInfo

ProgressCallback = Callable[[int, int], None]


@dataclass
class ImapSyncReport:
    """What one sync of an IMAP source did."""

    source_id: int
    folders: int = 0
    folders_unchanged: int = 0
    fetched: int = 0
    bytes: int = 0
    adopted: int = 0
    adopted_bytes: int = 0
    flags_pulled: int = 0
    flags_pushed: int = 0
    expunged_locally: int = 0
    moved_at_source: int = 0
    uploaded: int = 0
    linked: int = 0
    deleted_at_source: int = 0
    removals_not_propagated: int = 0
    skipped_too_large: int = 0
    seconds: float = 0.0


@dataclass
class SyncContext:
    """What one sync of a source knows beyond a single folder."""

    store: MailStore
    source: SourceInfo
    peer: ImapPeer
    budget: DailyBudget
    report: ImapSyncReport
    on_progress: ProgressCallback | None
    actor: SourceSyncActor
    keyword: str
    dedupe: bool
    plans: list[FolderPlan] = field(default_factory=list)
    # Every folder the source LISTed, synced or not (where to find its Trash).
    remote_folders: list[RemoteFolder] = field(default_factory=list)
    mailbox_of_plan: dict[str, int] = field(default_factory=dict)
    # Each folder's position as the previous sync left it, read once per sync.
    saved_folders: dict[str, SourceFolderInfo] = field(default_factory=dict)

    @property
    def capabilities(self) -> frozenset[str]:
        return self.peer.capabilities

    def folder_of_mailbox(self, mailbox_id: int) -> str | None:
        for remote, local in self.mailbox_of_plan.items():
            if local == mailbox_id:
                return remote
        return None

    def special_folder(self, use: str) -> str | None:
        return next((p.remote_name for p in self.plans if p.special_use == use), None)


@dataclass(frozen=True)
class LocalChanges:
    """What happened to a local mailbox since a MODSEQ, by anyone but this source's sync."""

    flagged: set[int]
    appended: set[int]
    expunged: bool

    def __bool__(self) -> bool:
        return bool(self.flagged or self.appended or self.expunged)


def local_changes(sync: SyncContext, mailbox_id: int, since_modseq: int) -> LocalChanges:
    """Local UIDs whose flags changed, UIDs appended, whether anything was expunged."""
    flagged: set[int] = set()
    appended: set[int] = set()
    expunged = False
    own = str(sync.actor)
    for change in sync.store.changes_since(mailbox_id=mailbox_id, modseq=since_modseq):
        if change.actor == own:
            continue
        if change.kind == "flags":
            flagged.add(change.uid)
        elif change.kind == "append":
            appended.add(change.uid)
        elif change.kind == "expunge":
            expunged = True
    return LocalChanges(flagged, appended, expunged)


class OpenFolder:
    """One selected remote folder: its key, local mailbox and the position saved for it."""

    def __init__(
        self,
        sync: SyncContext,
        plan: FolderPlan,
        *,
        key: FolderKey,
        remote_keywords: bool,
        saved: SourceFolderInfo | None,
    ) -> None:
        self.sync = sync
        self.plan = plan
        self.peer = sync.peer
        self.key = key
        self.mailbox_id = sync.mailbox_of_plan[plan.remote_name]
        # Whether the folder keeps keywords (`\*` in PERMANENTFLAGS, RFC 3501 §7.1).
        self.remote_keywords = remote_keywords
        self.saved = saved

    @property
    def name(self) -> str:
        return self.plan.remote_name

    def save(self, *, last_uid: int, modseq: int, local_modseq: int) -> None:
        """Record how far this folder is synced (resume point, both MODSEQs)."""
        self.saved = self.sync.store.save_source_folder(
            source_id=self.sync.source.id,
            remote_name=self.plan.remote_name,
            mailbox_id=self.mailbox_id,
            uidvalidity=self.key.uidvalidity,
            last_uid=last_uid,
            highestmodseq=modseq,
            local_modseq=local_modseq,
        )

    def save_resume_point(self, last_uid: int) -> None:
        """Move only the resume point forward (a durable batch of downloads)."""
        saved = self.saved
        same = saved is not None and saved.uidvalidity == self.key.uidvalidity
        self.save(
            last_uid=max(last_uid, saved.last_uid if saved and same else 0),
            modseq=saved.highestmodseq if saved and same else 0,
            local_modseq=saved.local_modseq if saved else self.local_highestmodseq(),
        )

    def local_highestmodseq(self) -> int:
        return self.sync.store.mailbox_status(mailbox_id=self.mailbox_id).highestmodseq
