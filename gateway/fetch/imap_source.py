"""IMAP sync of one source: folders mapped, new mail fetched, flags and deletions both ways.

Blocking by design (IMAPClient); the scheduler runs it in a thread. This module orchestrates;
each job lives in its own module and works on one selected folder (`imap_context.OpenFolder`).
Per folder, in order:

1. new messages are downloaded (`imap_download.py`);
2. flags are reconciled three ways (`imap_reconcile.py`);
3. messages gone from the source are expunged locally (`imap_reconcile.py`);
4. local removals and uploads are written back to the source (`imap_write_back.py`).

A changed UIDVALIDITY makes the folder resync with `adopt="content"`: messages already stored
are recognised by their bytes and keep their local UIDs and flags. The engine talks to the
source only through `ImapPeer` (`imap_peer.py`), so tests can run it against a fake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.fetch.actors import SourceSyncActor
from gateway.fetch.budget import DailyBudget
from gateway.fetch.errors import SyncError, classify_error
from gateway.fetch.imap_client import ImapClientPeer
from gateway.fetch.imap_connection import ImapAuthenticator, open_imap
from gateway.fetch.imap_context import (
    ImapSyncReport,
    OpenFolder,
    ProgressCallback,
    SyncContext,
    local_changes,
)
from gateway.fetch.imap_download import NewMailDownload
from gateway.fetch.imap_folders import FolderPlan, plan_folders
from gateway.fetch.imap_peer import ImapPeer
from gateway.fetch.imap_reconcile import pull_deletions, reconcile_flags, remote_flag_changes
from gateway.fetch.imap_reuse import ImapConnectionCache
from gateway.fetch.imap_write_back import push_removals, upload_to_source
from gateway.fetch.keywords import source_keyword
from gateway.fetch.source_auth import authenticator_for
from gateway.store import AdoptRule, FolderKey, MailboxInfo, MailStore, NotFoundError, SourceInfo

log = logging.getLogger("gateway.fetch")

__all__ = ["ImapSyncReport", "PeerOpener", "sync_imap_source"]

# Opens a logged-in connection for a source (tests pass an in-memory fake's).
PeerOpener = Callable[[SourceInfo], ImapPeer]


def sync_imap_source(
    store: MailStore,
    source: SourceInfo,
    *,
    now: datetime | None = None,
    authenticator: ImapAuthenticator | None = None,
    on_progress: ProgressCallback | None = None,
    connections: ImapConnectionCache | None = None,
    open_peer: PeerOpener | None = None,
) -> ImapSyncReport:
    """Sync every chosen folder of an IMAP source both ways; raises `SyncError`.

    `now` is the clock of the daily budget (injectable for tests); `on_progress(fetched,
    bytes)` runs after every durable batch (stops a sync whose lease was lost). With
    `connections`, the sync reuses the source's kept connection and hands it back when it
    succeeds. `open_peer` replaces the real connection (IMAPClient, `authenticator`) with
    another `ImapPeer`.
    """
    started = time.monotonic()
    report = ImapSyncReport(source_id=source.id)
    budget = DailyBudget(store, source, now or datetime.now(UTC))
    peer: ImapPeer
    real: ImapClientPeer | None = None  # a real connection, which `connections` may keep
    fresh = True
    if open_peer is not None:
        peer = open_peer(source)
    else:
        real = connections.take(source) if connections is not None else None
        fresh = real is None
        if real is None:
            if authenticator is None:
                authenticator = authenticator_for(store, source)
            real = open_imap(source, authenticator)
        peer = real
    succeeded = False
    try:
        user = store.get_user_by_id(user_id=source.user_id)
        capabilities = peer.capabilities
        if fresh and "CONDSTORE" in capabilities and "ENABLE" in capabilities:
            peer.enable("CONDSTORE")
        sync = SyncContext(
            store=store,
            source=source,
            peer=peer,
            budget=budget,
            report=report,
            on_progress=on_progress,
            actor=SourceSyncActor(source.id),
            keyword=source_keyword(source.name),
            dedupe=user.dedupe_across_sources,
        )
        _plan(sync)
        for plan in sync.plans:
            _sync_folder(sync, plan)
        report.folders = len(sync.plans)
        succeeded = True
    except SyncError:
        raise
    except Exception as error:
        raise classify_error(error) from error
    finally:
        budget.save()
        if succeeded and connections is not None and real is not None:
            connections.keep(source, real)
        else:
            peer.close()
    report.seconds = time.monotonic() - started
    log.info(
        "event=imap_synced source=%s source_id=%d folders=%d fetched=%d bytes=%d adopted=%d "
        "flags_pulled=%d flags_pushed=%d expunged_locally=%d moved=%d deleted=%d seconds=%.2f",
        source.label,
        source.id,
        report.folders,
        report.fetched,
        report.bytes,
        report.adopted,
        report.flags_pulled,
        report.flags_pushed,
        report.expunged_locally,
        report.moved_at_source,
        report.deleted_at_source,
        report.seconds,
    )
    return report


def _plan(sync: SyncContext) -> None:
    """LIST the source, choose the folders and find (or create) each one's local mailbox."""
    chosen = sync.source.options.get("folders")
    sync.remote_folders = sync.peer.list_folders()
    sync.plans = plan_folders(
        sync.remote_folders,
        source_name=sync.source.name,
        chosen=[str(c) for c in chosen] if isinstance(chosen, list) else None,
    )
    mailboxes = sync.store.list_mailboxes(user_id=sync.source.user_id)
    for plan in sync.plans:
        sync.mailbox_of_plan[plan.remote_name] = _local_mailbox(sync, plan, mailboxes).id
    followed = {plan.remote_name for plan in sync.plans}
    for saved in sync.store.list_source_folders(source_id=sync.source.id):
        sync.saved_folders[saved.remote_name] = saved
        if saved.remote_name not in followed:
            log.info(
                "event=imap_folder_dropped source=%s folder=%r",
                sync.source.label,
                saved.remote_name,
            )
            sync.store.delete_source_folder(source_id=sync.source.id, remote_name=saved.remote_name)


def _local_mailbox(sync: SyncContext, plan: FolderPlan, known: list[MailboxInfo]) -> MailboxInfo:
    user_id = sync.source.user_id
    if plan.is_inbox:
        return sync.store.get_mailbox(user_id=user_id, name="INBOX")
    if plan.special_use is not None:
        for mailbox in known:
            if mailbox.special_use == plan.special_use:
                return mailbox
    name = plan.local_name or plan.remote_name
    try:
        return sync.store.get_mailbox(user_id=user_id, name=name)
    except NotFoundError:
        return sync.store.create_mailbox(user_id=user_id, name=name)


def _sync_folder(sync: SyncContext, plan: FolderPlan) -> None:
    """One folder, in the order the module docstring gives."""
    saved = sync.saved_folders.get(plan.remote_name)
    mailbox_id = sync.mailbox_of_plan[plan.remote_name]
    if _unchanged_since_last_sync(sync, plan, mailbox_id):
        sync.report.folders_unchanged += 1
        return
    selected = sync.peer.select_folder(plan.remote_name)
    uidvalidity = selected.uidvalidity
    modseq = selected.highestmodseq
    reset = saved is not None and saved.uidvalidity not in (None, uidvalidity)
    if reset:
        log.warning(
            "event=imap_uidvalidity_changed source=%s folder=%r old=%s new=%d "
            "action=resync_by_content",
            sync.source.label,
            plan.remote_name,
            saved.uidvalidity if saved else None,
            uidvalidity,
        )
    folder = OpenFolder(
        sync,
        plan,
        key=FolderKey(sync.source.id, plan.remote_name, uidvalidity),
        remote_keywords="\\*" in selected.permanent_flags,
        saved=saved,
    )
    fresh = saved is None or reset
    last_uid = 0 if fresh or saved is None else saved.last_uid
    last_modseq = 0 if fresh or saved is None else saved.highestmodseq
    # Changes after this point are looked at by the next sync, ours included (skipped).
    local_mark = folder.local_highestmodseq()
    local_modseq = local_mark if saved is None else saved.local_modseq

    adopt: AdoptRule | None = "content" if reset else ("message-id" if sync.dedupe else None)
    download = NewMailDownload(folder, adopt)
    new_last_uid = download.run(last_uid)
    if reset and new_last_uid >= _remote_uidnext(sync, plan) - 1:
        sync.store.drop_stale_origins(
            source_id=sync.source.id, remote_folder=plan.remote_name, uidvalidity=uidvalidity
        )
    remote = remote_flag_changes(folder, last_uid=last_uid, last_modseq=last_modseq, modseq=modseq)
    local = local_changes(sync, mailbox_id, local_modseq)
    reconcile_flags(folder, remote, local.flagged | download.adopted)
    pull_deletions(folder, remote.scanned, last_uid)
    if local.expunged:
        push_removals(folder)
    if local.appended and plan.owned_by_source:
        upload_to_source(folder, local.appended)
    folder.save(
        last_uid=new_last_uid,
        modseq=_current_modseq(sync, plan, modseq),
        local_modseq=local_mark,
    )


def _unchanged_since_last_sync(sync: SyncContext, plan: FolderPlan, mailbox_id: int) -> bool:
    """One STATUS instead of a SELECT and its scans, for the common idle poll: with
    CONDSTORE, an unchanged UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and message count say
    nothing happened at the source; the change log says whether anything happened here."""
    saved = sync.saved_folders.get(plan.remote_name)
    if saved is None or saved.uidvalidity is None or saved.highestmodseq == 0:
        return False
    if "CONDSTORE" not in sync.capabilities:
        return False
    status = sync.peer.folder_status(
        plan.remote_name, ["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ", "MESSAGES"]
    )
    key = FolderKey(sync.source.id, plan.remote_name, saved.uidvalidity)
    remote_unchanged = (
        status.get("UIDVALIDITY", 0) == saved.uidvalidity
        and status.get("UIDNEXT", 0) <= saved.last_uid + 1
        and status.get("HIGHESTMODSEQ", 0) == saved.highestmodseq
        and status.get("MESSAGES", -1) == sync.store.count_remote_messages(key)
    )
    return remote_unchanged and not local_changes(sync, mailbox_id, saved.local_modseq)


def _remote_uidnext(sync: SyncContext, plan: FolderPlan) -> int:
    return sync.peer.folder_status(plan.remote_name, ["UIDNEXT"])["UIDNEXT"]


def _current_modseq(sync: SyncContext, plan: FolderPlan, fallback: int) -> int:
    if "CONDSTORE" not in sync.capabilities:
        return 0
    return sync.peer.folder_status(plan.remote_name, ["HIGHESTMODSEQ"]).get(
        "HIGHESTMODSEQ", fallback
    )
