"""Downloading a folder's new messages: metadata, reuse of stored copies, budget, batches.

New messages (UID above the folder's resume point and not yet known) are read with
`BODY.PEEK[]` — never setting \\Seen at the source — in batches, those over the stream
threshold in 1 MiB partial fetches streamed to the blob store, each batch group-committed
before the resume point moves: a kill loses at most one batch of downloads, never a message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from gateway.fetch.batching import IMAP_BATCHES, is_streamed, runs_of_batches, split_batches
from gateway.fetch.errors import SyncError
from gateway.fetch.imap_context import OpenFolder
from gateway.fetch.imap_peer import RemoteMessage
from gateway.fetch.imap_wire import sequence_set
from gateway.fetch.keywords import tag_adopted
from gateway.fetch.prefetch import Prefetcher
from gateway.store import AdoptRule, AppendResult, LinkedMessage, NewMessage, OriginKey
from gateway.store.flags import split_flags

log = logging.getLogger("gateway.fetch")

PARTIAL_CHUNK = 1024 * 1024
# UIDs per metadata FETCH: bounds the command line and one response's memory.
METADATA_CHUNK = 2000

Listing = dict[int, RemoteMessage]


class NewMailDownload:
    """Fetches what is new in one folder; `run` returns the new resume point and the remote
    UIDs adopted (already stored, now followed)."""

    def __init__(self, folder: OpenFolder, adopt: AdoptRule | None) -> None:
        self.folder = folder
        self.sync = folder.sync
        self.adopt = adopt
        self.adopted: set[int] = set()

    def run(self, last_uid: int) -> int:
        folder, store = self.folder, self.sync.store
        # `n:*` always matches the highest UID, even below n (RFC 3501 §6.4.8).
        remote = [u for u in folder.peer.search_uids(f"{last_uid + 1}:*") if u > last_uid]
        if not remote:
            return last_uid
        known = store.known_remote_uids(folder.key, above=last_uid)
        wanted = sorted(set(remote) - known)
        store.warm_ingest_workers(len(wanted))
        listing: Listing = {}
        for start in range(0, len(wanted), METADATA_CHUNK):
            chunk = sequence_set(wanted[start : start + METADATA_CHUNK])
            listing.update(folder.peer.fetch_metadata(chunk))
        reused = self._reuse_stored(listing)
        planned = list(
            self._batches([u for u in wanted if u in listing and u not in reused], listing)
        )
        allowed = self._within_budget(planned, listing)
        for run in runs_of_batches(allowed, lambda uid: listing[uid].size):
            if len(run) == 1 and is_streamed(listing[run[0][0]].size):
                # Streamed from this thread: the connection is ours between prefetched runs.
                items = list(self._download(run[0], listing))
                results = store.append_messages(
                    items=items, actor=str(self.sync.actor), defer_search_text=True
                )
                self._account(run[0], results, listing)
                continue
            with Prefetcher(lambda b: list(self._download(b, listing)), run) as downloads:
                committed = store.append_message_batches(
                    batches=downloads, actor=str(self.sync.actor), defer_search_text=True
                )
                for batch, results in zip(run, committed, strict=True):
                    self._account(batch, results, listing)
        if sum(map(len, allowed)) < sum(map(len, planned)):
            raise self.sync.budget.exhausted()
        return max(remote)

    def _reuse_stored(self, listing: Listing) -> set[int]:
        """Messages this source already delivered (same Message-ID and size) are not
        downloaded again: one in a second folder (a Gmail label) gets an entry sharing the
        stored content; one already in this mailbox (a renumbered folder, a message moved
        away and back) just gets its new origin. Returns the remote UIDs so handled."""
        folder, sync = self.folder, self.sync
        keys = {
            uid: (remote.message_id, remote.size)
            for uid, remote in listing.items()
            if remote.message_id
        }
        copies = sync.store.find_source_copies(source_id=sync.source.id, keys=set(keys.values()))
        if not copies:
            return set()
        holders = sync.store.mailboxes_holding(message_ids=set(copies.values()))
        links: list[LinkedMessage] = []
        for uid, key in sorted(keys.items()):
            message_id = copies.get(key)
            if message_id is None:
                continue
            flags = list(listing[uid].flags)
            if folder.mailbox_id in holders.get(message_id, []):
                bits, keywords = split_flags(flags)
                sync.store.follow_remote_message(
                    folder.key, remote_uid=uid, message_id=message_id, flags=bits, keywords=keywords
                )
                self.adopted.add(uid)
                sync.report.adopted += 1
                continue
            origin = OriginKey(sync.source.id, folder.name, folder.key.uidvalidity, uid)
            links.append(
                LinkedMessage(folder.mailbox_id, message_id, [*flags, sync.keyword], origin)
            )
        sync.store.link_messages(items=links, actor=str(sync.actor))
        sync.report.linked += len(links)
        return {uid for uid, key in keys.items() if key in copies}

    def _within_budget(self, planned: list[list[int]], listing: Listing) -> list[list[int]]:
        """The leading messages today's budget allows, in their batches (spent as they
        commit); the first message of a day may exceed it, or it could never be fetched."""
        allowed: list[list[int]] = []
        ahead = 0
        for batch in planned:
            kept: list[int] = []
            for uid in batch:
                size = listing[uid].size
                if not self.sync.budget.allows(size, ahead=ahead):
                    if kept:
                        allowed.append(kept)
                    return allowed
                ahead += size
                kept.append(uid)
            allowed.append(kept)
        return allowed

    def _account(self, batch: list[int], results: list[AppendResult], listing: Listing) -> None:
        """A batch is durable: count it, spend the budget, move the resume point."""
        report = self.sync.report
        stored = 0
        joined: list[int] = []
        for uid, result in zip(batch, results, strict=True):
            size = listing[uid].size
            self.sync.budget.spend(size)
            if result.adopted:
                self.adopted.add(uid)
                report.adopted += 1
                report.adopted_bytes += size
                joined.append(result.uid)
            elif not result.duplicate:
                stored += 1
                report.fetched += 1
                report.bytes += size
        if self.adopt == "message-id":  # another account's copy: tag it as this one's too
            tag_adopted(
                self.sync.store,
                self.folder.mailbox_id,
                joined,
                self.sync.keyword,
                str(self.sync.actor),
            )
        self.folder.save_resume_point(max(batch))
        if self.sync.on_progress is not None:
            self.sync.on_progress(stored, sum(listing[u].size for u in batch))

    def _batches(self, uids: list[int], listing: Listing) -> Iterator[list[int]]:
        """The downloadable UIDs in batches; those above the store's size limit are left
        at the source and reported."""
        limit = self.sync.store.max_message_size
        fitting: list[tuple[int, int]] = []
        for uid in uids:
            size = listing[uid].size
            if size > limit:
                self.sync.report.skipped_too_large += 1
                log.warning(
                    "event=imap_message_skipped source=%s folder=%r uid=%d size=%d "
                    "reason=larger_than_max_message_size",
                    self.sync.source.label,
                    self.folder.name,
                    uid,
                    size,
                )
                continue
            fitting.append((uid, size))
        return split_batches(fitting, IMAP_BATCHES)

    def _download(self, batch: list[int], listing: Listing) -> Iterator[NewMessage]:
        folder = self.folder
        if len(batch) == 1 and is_streamed(listing[batch[0]].size):
            bodies: dict[int, bytes | Iterator[bytes]] = {
                batch[0]: self._stream(batch[0], listing[batch[0]].size)
            }
        else:
            bodies = dict(folder.peer.fetch_bodies(sequence_set(batch)))
        for uid in batch:
            body = bodies.get(uid)
            if body is None:
                raise SyncError("protocol", f"server returned no body for UID {uid}")
            remote = listing[uid]
            yield NewMessage(
                mailbox_id=folder.mailbox_id,
                content=body,
                flags=[*remote.flags, self.sync.keyword],
                internal_date=remote.internal_date,
                origin=OriginKey(self.sync.source.id, folder.name, folder.key.uidvalidity, uid),
                adopt=self.adopt,
            )

    def _stream(self, uid: int, size: int) -> Iterator[bytes]:
        """The message in 1 MiB partial fetches, so memory stays flat however large it is."""
        offset = 0
        while offset < size:
            chunk = self.folder.peer.fetch_body_chunk(uid, offset, PARTIAL_CHUNK)
            if not chunk:
                break
            yield chunk
            offset += len(chunk)
