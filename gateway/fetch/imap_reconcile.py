"""Flags reconciled three ways, and messages gone from the source expunged locally.

Flags: for every message changed at the source (CONDSTORE `CHANGEDSINCE`, else a FLAGS scan)
or locally (the change log since the last sync), the agreed state, the local and the remote
flags are merged (`flag_merge.py`) and the result written to whichever side differs
(DESIGN invariant 4, docs/architecture.md). Deletions: what the source no longer lists is
expunged locally, unless another account still has it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.fetch.flag_merge import FlagState, merge_flags, syncable_keywords
from gateway.fetch.imap_context import OpenFolder
from gateway.fetch.imap_peer import FlagAction
from gateway.fetch.imap_wire import sequence_set
from gateway.store import RemotePair
from gateway.store.flags import flag_names, split_flags

log = logging.getLogger("gateway.fetch")


@dataclass(frozen=True)
class RemoteFlagChanges:
    """Remote flags of messages that may have changed; on a full FLAGS scan (no CONDSTORE)
    also every remote UID up to the resume point, which the deletion pass reuses."""

    flags: dict[int, FlagState]
    scanned: set[int] | None

    @property
    def full_scan(self) -> bool:
        return self.scanned is not None


def remote_flag_changes(
    folder: OpenFolder, *, last_uid: int, last_modseq: int, modseq: int
) -> RemoteFlagChanges:
    """What changed at the source up to `last_uid` since the last sync."""
    if last_uid == 0:
        return RemoteFlagChanges({}, None)
    condstore = "CONDSTORE" in folder.sync.capabilities and last_modseq > 0 and modseq > 0
    if condstore and modseq <= last_modseq:
        return RemoteFlagChanges({}, None)
    fetched = folder.peer.fetch_flags(
        f"1:{last_uid}", changed_since=last_modseq if condstore else None
    )
    flags = {uid: flag_state(names) for uid, names in fetched.items() if uid <= last_uid}
    return RemoteFlagChanges(flags, None if condstore else set(flags))


def reconcile_flags(folder: OpenFolder, changes: RemoteFlagChanges, local_uids: set[int]) -> None:
    """Merge and write the flags of every message changed on either side."""
    sync, store = folder.sync, folder.sync.store
    remote = changes.flags
    pairs = store.folder_pairs(
        folder.key, mailbox_id=folder.mailbox_id, remote_uids=list(remote), local_uids=local_uids
    )
    if changes.full_scan:
        # Only messages whose remote flags differ from the agreed state, or local changes.
        pairs = [
            p
            for p in pairs
            if p.local_uid in local_uids
            or (p.remote_uid in remote and _differs(remote[p.remote_uid], p))
        ]
    missing = [
        p.remote_uid for p in pairs if p.local_uid is not None and p.remote_uid not in remote
    ]
    if missing:
        fetched = folder.peer.fetch_flags(sequence_set(missing))
        remote = {**remote, **{uid: flag_state(names) for uid, names in fetched.items()}}
    local_updates: dict[tuple[int, frozenset[str]], list[int]] = defaultdict(list)
    pushes: dict[tuple[FlagAction, str], list[int]] = defaultdict(list)
    agreed: list[tuple[int, int, frozenset[str]]] = []
    for pair in pairs:
        if pair.local_uid is None:
            continue  # gone locally: the removal pass decides what happens at the source
        base = FlagState(pair.synced_flags, pair.synced_keywords)
        local = FlagState(pair.local_flags, pair.local_keywords)
        current = remote.get(pair.remote_uid)
        if current is None:
            continue  # expunged at the source since; the deletion pass handles it
        result = merge_flags(base, local, current, remote_keywords=folder.remote_keywords)
        merged = result.merged
        if result.both_changed:
            log.info(
                "event=flags_conflict source=%s folder=%r uid=%d resolution=per_flag_merge",
                sync.source.label,
                folder.name,
                pair.remote_uid,
            )
        local_keywords = merged.keywords | (
            pair.local_keywords - syncable_keywords(pair.local_keywords)
        )
        if (merged.bits, local_keywords) != (pair.local_flags, pair.local_keywords):
            local_updates[(merged.bits, local_keywords)].append(pair.local_uid)
        _plan_push(folder, pair.remote_uid, current, merged, pushes)
        agreed.append((pair.remote_uid, merged.bits, merged.keywords))
    for (bits, keywords), uids in local_updates.items():
        store.set_flags(
            mailbox_id=folder.mailbox_id,
            uids=uids,
            flags=flag_names(bits, keywords),
            mode="replace",
            actor=str(sync.actor),
        )
        sync.report.flags_pulled += len(uids)
    for (action, flag), uids in pushes.items():
        folder.peer.store_flags(sequence_set(uids), action, [flag])
    sync.report.flags_pushed += len({u for uids in pushes.values() for u in uids})
    store.record_synced_flags(folder.key, states=agreed)


def _plan_push(
    folder: OpenFolder,
    uid: int,
    current: FlagState,
    merged: FlagState,
    pushes: dict[tuple[FlagAction, str], list[int]],
) -> None:
    for name in flag_names(merged.bits & ~current.bits):
        pushes[("+FLAGS", name)].append(uid)
    for name in flag_names(current.bits & ~merged.bits):
        pushes[("-FLAGS", name)].append(uid)
    if not folder.remote_keywords:
        return
    remote_kw = syncable_keywords(current.keywords)
    for name in sorted(merged.keywords - remote_kw):
        pushes[("+FLAGS", name)].append(uid)
    for name in sorted(remote_kw - merged.keywords):
        pushes[("-FLAGS", name)].append(uid)


def pull_deletions(folder: OpenFolder, scanned: set[int] | None, scanned_up_to: int) -> None:
    """Expunge locally what the source no longer has. A FLAGS scan already listed every
    UID up to `scanned_up_to` (what was fetched above it just now is not in that list);
    otherwise counting tells whether anything went, and a UID SEARCH finds what."""
    sync = folder.sync
    known = sync.store.known_remote_uids(folder.key)
    if scanned is not None:
        gone = {uid for uid in known if uid <= scanned_up_to} - scanned
    else:
        # STATUS on the selected mailbox is not reliable (RFC 3501 §6.3.10): re-select.
        selected = folder.peer.select_folder(folder.name)
        if selected.exists == len(known):
            return
        gone = known - set(folder.peer.search_uids())
    if not gone:
        return
    expunged = sync.store.forget_remote_messages(
        folder.key, remote_uids=gone, mailbox_id=folder.mailbox_id, actor=str(sync.actor)
    )
    sync.report.expunged_locally += len(expunged)
    log.info(
        "event=imap_removed_at_source source=%s folder=%r remote=%d local_expunged=%d",
        sync.source.label,
        folder.name,
        len(gone),
        len(expunged),
    )


def _differs(remote: FlagState, pair: RemotePair) -> bool:
    return remote.bits != pair.synced_flags or syncable_keywords(
        remote.keywords
    ) != syncable_keywords(pair.synced_keywords)


def flag_state(names: Iterable[str]) -> FlagState:
    return FlagState(*split_flags(names))
