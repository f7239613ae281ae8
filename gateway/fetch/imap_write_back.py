"""Write-back of local removals and uploads to the source, for one folder.

A message whose local copy left the folder is moved at the source to the folder its copy went
to (`move_policy=follow`, the default), or handled by the source's `delete_policy` (trash —
default —, expunge, keep). A message filed on a device into a folder only this source feeds is
uploaded (APPEND, flags and date kept). What starts these passes is a local change in the
folder's mailbox: `FetchScheduler.write_back` syncs the sources feeding it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from gateway.fetch.errors import classify_error
from gateway.fetch.flag_merge import syncable_keywords
from gateway.fetch.imap_context import OpenFolder
from gateway.fetch.imap_folders import RemoteFolder, new_folder_name, special_use_of
from gateway.fetch.imap_wire import sequence_set
from gateway.store import FolderKey, RemotePair
from gateway.store.flags import flag_names

log = logging.getLogger("gateway.fetch")


def push_removals(folder: OpenFolder) -> None:
    """Carry out at the source what happened to messages whose local copy left the folder."""
    store = folder.sync.store
    unpaired = store.folder_pairs(folder.key, mailbox_id=folder.mailbox_id, unpaired_only=True)
    if not unpaired:
        return
    holders = store.mailboxes_holding(
        message_ids=[p.message_id for p in unpaired if p.message_id is not None]
    )
    by_target: dict[str | None, list[RemotePair]] = defaultdict(list)
    for pair in unpaired:
        target = None
        for mailbox_id in holders.get(pair.message_id or -1, []):
            remote = folder.sync.folder_of_mailbox(mailbox_id)
            if remote is not None and remote != folder.name:
                target = remote
                break
        by_target[target].append(pair)
    follow_moves = folder.sync.source.options.get("move_policy", "follow") == "follow"
    for target, pairs in by_target.items():
        if target is not None and follow_moves:
            move_at_source(folder, pairs, target)
        elif target is not None:
            store.detach_remote_messages(folder.key, remote_uids=[p.remote_uid for p in pairs])
        else:
            delete_at_source(folder, pairs)


def delete_at_source(folder: OpenFolder, pairs: Sequence[RemotePair]) -> None:
    """Apply the source's `delete_policy` to messages deleted on a device."""
    sync = folder.sync
    policy = str(sync.source.options.get("delete_policy", "trash"))
    uids = [p.remote_uid for p in pairs]
    if policy == "trash":
        trash = find_or_create_trash(folder)
        if trash is not None and trash != folder.name:
            move_at_source(folder, pairs, trash)
            return
    if policy == "expunge" and "UIDPLUS" in sync.capabilities:
        uid_set = sequence_set(uids)
        folder.peer.store_flags(uid_set, "+FLAGS", ["\\Deleted"])
        folder.peer.expunge_uids(uid_set)
        sync.store.forget_remote_messages(
            folder.key, remote_uids=uids, mailbox_id=folder.mailbox_id, actor=str(sync.actor)
        )
        sync.report.deleted_at_source += len(uids)
        return
    # keep, or nowhere safe to put it: the source keeps its copy, we stop following it.
    sync.store.detach_remote_messages(folder.key, remote_uids=uids)
    if policy == "keep":
        return
    # The user asked for the deletion to reach the source and it could not: say so where
    # they look (`source list`, the API), not only in a log line.
    sync.store.record_unpropagated_removals(source_id=sync.source.id, count=len(uids))
    sync.report.removals_not_propagated += len(uids)
    log.warning(
        "event=imap_removal_not_propagated source=%s folder=%r count=%d policy=%s reason=%s",
        sync.source.label,
        folder.name,
        len(uids),
        policy,
        "no_trash_folder" if policy == "trash" else "no_uidplus",
    )


def find_or_create_trash(folder: OpenFolder) -> str | None:
    """The source's Trash: the synced special folder, else a LISTed one marked `\\Trash`
    (RFC 6154) or with a usual name, else one created now, as mail clients do. None when
    the server refuses to create it."""
    sync = folder.sync
    synced = sync.special_folder("\\Trash")
    if synced is not None:
        return synced
    listed = next((f.name for f in sync.remote_folders if special_use_of(f) == "\\Trash"), None)
    if listed is not None:
        return listed
    name = new_folder_name("Trash", sync.remote_folders)
    try:
        folder.peer.create_folder(name)
    except Exception as error:  # a server may forbid new folders; the caller reports it
        log.warning(
            "event=imap_trash_create_failed source=%s folder=%r error=%s",
            sync.source.label,
            name,
            classify_error(error).message,
        )
        return None
    sync.remote_folders.append(RemoteFolder(name, None, frozenset()))
    log.info("event=imap_trash_created source=%s folder=%r", sync.source.label, name)
    return name


def upload_to_source(folder: OpenFolder, local_uids: set[int]) -> None:
    """Messages filed on a device into a folder only this source feeds go to the source
    (APPEND, flags and date kept); those that came from it are already there."""
    sync, store = folder.sync, folder.sync.store
    entries = store.unfollowed_entries(
        folder.key, mailbox_id=folder.mailbox_id, local_uids=local_uids
    )
    if not entries:
        return
    metadata = store.get_messages(message_ids=[e.message_id for e in entries])
    for entry in entries:
        keywords = syncable_keywords(entry.keywords) if folder.remote_keywords else frozenset()
        with store.open_message(message_id=entry.message_id) as handle:
            content = handle.read()
        appended = folder.peer.append(
            folder.name,
            content,
            flags=flag_names(entry.flags, keywords),
            internal_date=metadata[entry.message_id].internal_date,
        )
        if appended is not None and appended.uidvalidity == folder.key.uidvalidity:
            store.follow_remote_message(
                folder.key,
                remote_uid=appended.uid,
                message_id=entry.message_id,
                flags=entry.flags,
                keywords=keywords,
            )
    sync.report.uploaded += len(entries)
    log.info(
        "event=imap_uploaded source=%s folder=%r count=%d",
        sync.source.label,
        folder.name,
        len(entries),
    )


def move_at_source(folder: OpenFolder, pairs: Sequence[RemotePair], target: str) -> None:
    """UID MOVE (or COPY + \\Deleted + UID EXPUNGE) and follow the messages to `target`."""
    sync = folder.sync
    uids = [p.remote_uid for p in pairs]
    uid_set = sequence_set(uids)
    if "MOVE" in sync.capabilities:
        copied = folder.peer.transfer("MOVE", uid_set, target)
    else:
        copied = folder.peer.transfer("COPY", uid_set, target)
        folder.peer.store_flags(uid_set, "+FLAGS", ["\\Deleted"])
        if "UIDPLUS" in sync.capabilities:
            folder.peer.expunge_uids(uid_set)
    destination = FolderKey(sync.source.id, target, copied.uidvalidity if copied else 0)
    new_uids = copied.new_uids if copied else {}
    for uid in uids:
        sync.store.relocate_remote_message(
            folder.key, remote_uid=uid, to=destination, new_uid=new_uids.get(uid)
        )
    sync.report.moved_at_source += len(uids)
    log.info(
        "event=imap_moved_at_source source=%s from=%r to=%r count=%d copyuid=%s",
        sync.source.label,
        folder.name,
        target,
        len(uids),
        copied is not None,
    )
