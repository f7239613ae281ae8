"""IMAP sync of one source: folders mapped, new mail fetched, flags and deletions both ways.

Blocking by design (IMAPClient); the scheduler runs it in a thread. Per folder, in order:

1. new messages (UID above the folder's resume point and not yet known) are read with
   `BODY.PEEK[]` — never setting \\Seen at the source — in batches, those over 8 MiB in 1 MiB
   partial fetches streamed to the blob store, each batch group-committed before the resume
   point moves (a kill loses at most one batch of downloads, never a message);
2. flags are reconciled three ways (`flag_merge.py`) for every message changed at the source
   (CONDSTORE `CHANGEDSINCE`, else a FLAGS scan) or locally (the change log since the last
   write-back), and the merged flags are written to whichever side differs;
3. messages gone from the source are expunged locally (unless another account still has them);
4. messages whose local copy left the folder are moved at the source to the folder their copy
   went to, or handled by the source's `delete_policy` (trash — default —, expunge, keep).

A changed UIDVALIDITY makes the folder resync with `adopt="content"`: messages already stored
are recognised by their bytes and keep their local UIDs and flags.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from gateway.fetch.actors import sync_actor
from gateway.fetch.budget import DailyBudget
from gateway.fetch.connections import PasswordAuthenticator
from gateway.fetch.errors import SyncError, classify_error
from gateway.fetch.flag_merge import FlagState, merge_flags, syncable_keywords
from gateway.fetch.imap_connection import ImapAuthenticator, close_quietly, open_imap
from gateway.fetch.imap_folders import FolderPlan, RemoteFolder, plan_folders
from gateway.fetch.imap_reuse import ImapConnectionCache
from gateway.fetch.imap_wire import (
    sequence_set,
    uid_expunge,
    uid_fetch,
    uid_store,
    uid_transfer,
)
from gateway.fetch.keywords import source_keyword
from gateway.fetch.prefetch import Prefetcher
from gateway.store import (
    AdoptRule,
    AppendResult,
    FolderKey,
    LinkedMessage,
    MailboxInfo,
    MailStore,
    NewMessage,
    NotFoundError,
    OriginKey,
    RemotePair,
    SourceFolderInfo,
    SourceInfo,
)
from gateway.store.flags import flag_names, split_flags

log = logging.getLogger("gateway.fetch")

# Larger messages stream in partial fetches, each alone: that stops the prefetch and worker
# pipeline, so the line sits well above everyday attachments (at 1 MiB, the 1.8 % of a
# realistic corpus above it halved the throughput of a first sync; at 8 MiB: 538 → 998 msg/s).
STREAM_THRESHOLD = 8 * 1024 * 1024
PARTIAL_CHUNK = 1024 * 1024
BATCH_MESSAGES = 200
BATCH_BYTES = 16 * 1024 * 1024
METADATA_CHUNK = 2000
DELETE_POLICIES = ("trash", "expunge", "keep")
MOVE_POLICIES = ("follow", "keep")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.I)

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
    flags_pulled: int = 0
    flags_pushed: int = 0
    expunged_locally: int = 0
    moved_at_source: int = 0
    uploaded: int = 0
    linked: int = 0
    deleted_at_source: int = 0
    skipped_too_large: int = 0
    seconds: float = 0.0


@dataclass
class _Session:
    """What one sync knows beyond a single folder."""

    store: MailStore
    source: SourceInfo
    client: IMAPClient
    capabilities: frozenset[str]
    budget: DailyBudget
    report: ImapSyncReport
    on_progress: ProgressCallback | None
    actor: str
    keyword: str
    dedupe: bool
    plans: list[FolderPlan] = field(default_factory=list)
    mailbox_of_plan: dict[str, int] = field(default_factory=dict)
    # Each folder's position as the previous sync left it, read once per sync.
    saved_folders: dict[str, SourceFolderInfo] = field(default_factory=dict)

    def folder_of_mailbox(self, mailbox_id: int) -> str | None:
        for remote, local in self.mailbox_of_plan.items():
            if local == mailbox_id:
                return remote
        return None

    def special_folder(self, use: str) -> str | None:
        return next((p.remote_name for p in self.plans if p.special_use == use), None)


def sync_imap_source(
    store: MailStore,
    source: SourceInfo,
    *,
    now: datetime | None = None,
    authenticator: ImapAuthenticator | None = None,
    on_progress: ProgressCallback | None = None,
    connections: ImapConnectionCache | None = None,
) -> ImapSyncReport:
    """Sync every chosen folder of an IMAP source both ways; raises `SyncError`.

    `now` is the clock of the daily budget (injectable for tests); `on_progress(fetched,
    bytes)` runs after every durable batch (lease renewal). With `connections`, the sync
    reuses the source's kept connection and hands it back when it succeeds.
    """
    started = time.monotonic()
    report = ImapSyncReport(source_id=source.id)
    budget = DailyBudget(store, source, now or datetime.now(UTC))
    client = connections.take(source) if connections is not None else None
    fresh = client is None
    if client is None:
        if authenticator is None:
            authenticator = PasswordAuthenticator(store.read_source_secret(source_id=source.id))
        client = open_imap(source, authenticator)
    succeeded = False
    try:
        client.normalise_times = False
        capabilities = frozenset(c.decode().upper() for c in client.capabilities())
        if fresh and "CONDSTORE" in capabilities and "ENABLE" in capabilities:
            client.enable("CONDSTORE")
        session = _Session(
            store=store,
            source=source,
            client=client,
            capabilities=capabilities,
            budget=budget,
            report=report,
            on_progress=on_progress,
            actor=sync_actor(source.id),
            keyword=source_keyword(source.name),
            dedupe=store.get_user_by_id(user_id=source.user_id).dedupe_across_sources,
        )
        _plan(session)
        for plan in session.plans:
            _FolderSync(session, plan).run()
        report.folders = len(session.plans)
        succeeded = True
    except SyncError:
        raise
    except Exception as error:
        raise classify_error(error) from error
    finally:
        budget.save()
        if succeeded and connections is not None:
            connections.keep(source, client)
        else:
            close_quietly(client)
    report.seconds = time.monotonic() - started
    log.info(
        "event=imap_synced source_id=%d folders=%d fetched=%d bytes=%d adopted=%d "
        "flags_pulled=%d flags_pushed=%d expunged_locally=%d moved=%d deleted=%d seconds=%.2f",
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


def _plan(session: _Session) -> None:
    """LIST the source, choose the folders and find (or create) each one's local mailbox."""
    listed = [
        RemoteFolder(
            name=name if isinstance(name, str) else name.decode("utf-8", "replace"),
            delimiter=delimiter.decode() if isinstance(delimiter, bytes) else delimiter,
            attributes=frozenset(a.decode() if isinstance(a, bytes) else a for a in attributes),
        )
        for attributes, delimiter, name in session.client.list_folders()
    ]
    chosen = session.source.options.get("folders")
    session.plans = plan_folders(
        listed,
        source_name=session.source.name,
        chosen=[str(c) for c in chosen] if isinstance(chosen, list) else None,
    )
    mailboxes = session.store.list_mailboxes(user_id=session.source.user_id)
    for plan in session.plans:
        session.mailbox_of_plan[plan.remote_name] = _local_mailbox(session, plan, mailboxes).id
    followed = {plan.remote_name for plan in session.plans}
    for saved in session.store.list_source_folders(source_id=session.source.id):
        session.saved_folders[saved.remote_name] = saved
        if saved.remote_name not in followed:
            log.info(
                "event=imap_folder_dropped source_id=%d folder=%r",
                session.source.id,
                saved.remote_name,
            )
            session.store.delete_source_folder(
                source_id=session.source.id, remote_name=saved.remote_name
            )


def _local_mailbox(session: _Session, plan: FolderPlan, known: list[MailboxInfo]) -> MailboxInfo:
    user_id = session.source.user_id
    if plan.is_inbox:
        return session.store.get_mailbox(user_id=user_id, name="INBOX")
    if plan.special_use is not None:
        for mailbox in known:
            if mailbox.special_use == plan.special_use:
                return mailbox
    name = plan.local_name or plan.remote_name
    try:
        return session.store.get_mailbox(user_id=user_id, name=name)
    except NotFoundError:
        return session.store.create_mailbox(user_id=user_id, name=name)


class _FolderSync:
    def __init__(self, session: _Session, plan: FolderPlan) -> None:
        self.s = session
        self.plan = plan
        self.client = session.client
        self.mailbox_id = session.mailbox_of_plan[plan.remote_name]
        self.saved: SourceFolderInfo | None = session.saved_folders.get(plan.remote_name)

    def run(self) -> None:
        if self._unchanged_since_last_sync():
            self.s.report.folders_unchanged += 1
            return
        selected = self.client.select_folder(self.plan.remote_name)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        modseq = int(selected.get(b"HIGHESTMODSEQ", 0) or 0)
        permanent = {
            p.decode() if isinstance(p, bytes) else str(p)
            for p in selected.get(b"PERMANENTFLAGS", ())
        }
        self.remote_keywords = "\\*" in permanent
        self.key = FolderKey(self.s.source.id, self.plan.remote_name, uidvalidity)
        saved = self.saved
        reset = saved is not None and saved.uidvalidity not in (None, uidvalidity)
        if reset:
            log.warning(
                "event=imap_uidvalidity_changed source_id=%d folder=%r old=%s new=%d "
                "action=resync_by_content",
                self.s.source.id,
                self.plan.remote_name,
                saved.uidvalidity if saved else None,
                uidvalidity,
            )
        fresh = saved is None or reset
        last_uid = 0 if fresh or saved is None else saved.last_uid
        last_modseq = 0 if fresh or saved is None else saved.highestmodseq
        # Changes after this point are looked at by the next sync, ours included (skipped).
        local_mark = self._local_highestmodseq()
        local_modseq = local_mark if saved is None else saved.local_modseq

        adopt: AdoptRule | None = "content" if reset else ("message-id" if self.s.dedupe else None)
        new_last_uid, adopted = self._fetch_new(last_uid, adopt)
        if reset and new_last_uid >= self._remote_uidnext() - 1:
            self.s.store.drop_stale_origins(
                source_id=self.s.source.id,
                remote_folder=self.plan.remote_name,
                uidvalidity=uidvalidity,
            )
        remote_flags, scanned = self._remote_flag_changes(last_uid, last_modseq, modseq)
        local_changed, local_expunged, local_appended = self._local_changes(local_modseq)
        self._reconcile(remote_flags, local_changed | adopted, full_scan=scanned is not None)
        self._pull_deletions(scanned, last_uid)
        if local_expunged:
            self._push_removals()
        if local_appended and self.plan.owned_by_source:
            self._upload(local_appended)
        self._save(uidvalidity, new_last_uid, self._current_modseq(modseq), local_mark)

    def _unchanged_since_last_sync(self) -> bool:
        """One STATUS instead of a SELECT and its scans, for the common idle poll: with
        CONDSTORE, an unchanged UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and message count say
        nothing happened at the source; the change log says whether anything happened here."""
        saved = self.saved
        if saved is None or saved.uidvalidity is None or saved.highestmodseq == 0:
            return False
        if "CONDSTORE" not in self.s.capabilities:
            return False
        status = self.client.folder_status(
            self.plan.remote_name, [b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ", b"MESSAGES"]
        )
        key = FolderKey(self.s.source.id, self.plan.remote_name, saved.uidvalidity)
        remote_unchanged = (
            int(status.get(b"UIDVALIDITY", 0)) == saved.uidvalidity
            and int(status.get(b"UIDNEXT", 0)) <= saved.last_uid + 1
            and int(status.get(b"HIGHESTMODSEQ", 0)) == saved.highestmodseq
            and int(status.get(b"MESSAGES", -1)) == self.s.store.count_remote_messages(key)
        )
        if not remote_unchanged:
            return False
        changed, expunged, appended = self._local_changes(saved.local_modseq)
        return not (changed or expunged or appended)

    # --- positions -------------------------------------------------------------------

    def _save(self, uidvalidity: int, last_uid: int, modseq: int, local_modseq: int) -> None:
        self.saved = self.s.store.save_source_folder(
            source_id=self.s.source.id,
            remote_name=self.plan.remote_name,
            mailbox_id=self.mailbox_id,
            uidvalidity=uidvalidity,
            last_uid=last_uid,
            highestmodseq=modseq,
            local_modseq=local_modseq,
        )

    def _local_highestmodseq(self) -> int:
        return self.s.store.mailbox_status(mailbox_id=self.mailbox_id).highestmodseq

    def _remote_uidnext(self) -> int:
        status = self.client.folder_status(self.plan.remote_name, [b"UIDNEXT"])
        return int(status[b"UIDNEXT"])

    def _current_modseq(self, fallback: int) -> int:
        if "CONDSTORE" not in self.s.capabilities:
            return 0
        status = self.client.folder_status(self.plan.remote_name, [b"HIGHESTMODSEQ"])
        return int(status.get(b"HIGHESTMODSEQ", fallback))

    # --- 1. new messages -------------------------------------------------------------

    def _fetch_new(self, last_uid: int, adopt: AdoptRule | None) -> tuple[int, set[int]]:
        """Fetch what is new; returns the new resume point and the remote UIDs adopted."""
        # `n:*` always matches the highest UID, even below n (RFC 3501 §6.4.8).
        remote = [u for u in self.client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid]
        if not remote:
            return last_uid, set()
        known = self.s.store.known_remote_uids(self.key, above=last_uid)
        wanted = sorted(set(remote) - known)
        self.s.store.warm_ingest_workers(len(wanted))
        sizes: dict[int, tuple[int, list[str], datetime | None]] = {}
        message_ids: dict[int, str] = {}
        for start in range(0, len(wanted), METADATA_CHUNK):
            chunk = sequence_set(wanted[start : start + METADATA_CHUNK])
            for uid, data in uid_fetch(
                self.client,
                chunk,
                "RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]",
            ).items():
                sizes[uid] = (
                    int(data.get(b"RFC822.SIZE", 0)),
                    [_flag_text(f) for f in data.get(b"FLAGS", ())],
                    _aware(data.get(b"INTERNALDATE")),
                )
                header = message_id_of(data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]"))
                if header:
                    message_ids[uid] = header
        adopted: set[int] = set()
        reused = self._reuse_stored(message_ids, sizes, adopted)
        planned = list(self._batches([u for u in wanted if u in sizes and u not in reused], sizes))
        allowed = self._within_budget(planned, sizes)
        for run in _runs(allowed, sizes):
            if len(run) == 1 and sizes[run[0][0]][0] > STREAM_THRESHOLD:
                # Streamed from this thread: the connection is ours between prefetched runs.
                items = list(self._download(run[0], sizes, adopt))
                results = self.s.store.append_messages(
                    items=items, actor=self.s.actor, defer_search_text=True
                )
                self._account(run[0], results, sizes, adopted)
                continue
            with Prefetcher(lambda b: list(self._download(b, sizes, adopt)), run) as downloads:
                committed = self.s.store.append_message_batches(
                    batches=downloads, actor=self.s.actor, defer_search_text=True
                )
                for batch, results in zip(run, committed, strict=True):
                    self._account(batch, results, sizes, adopted)
        if sum(map(len, allowed)) < sum(map(len, planned)):
            raise self.s.budget.exhausted()
        return max(remote), adopted

    def _reuse_stored(
        self,
        message_ids: dict[int, str],
        sizes: dict[int, tuple[int, list[str], datetime | None]],
        adopted: set[int],
    ) -> set[int]:
        """Messages this source already delivered (same Message-ID and size) are not
        downloaded again: one in a second folder (a Gmail label) gets an entry sharing the
        stored content; one already in this mailbox (a renumbered folder, a message moved
        away and back) just gets its new origin. Returns the remote UIDs so handled."""
        keys = {uid: (header, sizes[uid][0]) for uid, header in message_ids.items()}
        copies = self.s.store.find_source_copies(
            source_id=self.s.source.id, keys=set(keys.values())
        )
        if not copies:
            return set()
        holders = self.s.store.mailboxes_holding(message_ids=set(copies.values()))
        links: list[LinkedMessage] = []
        for uid, key in sorted(keys.items()):
            message_id = copies.get(key)
            if message_id is None:
                continue
            flags = sizes[uid][1]
            if self.mailbox_id in holders.get(message_id, []):
                bits, keywords = split_flags(flags)
                self.s.store.follow_remote_message(
                    self.key, remote_uid=uid, message_id=message_id, flags=bits, keywords=keywords
                )
                adopted.add(uid)
                self.s.report.adopted += 1
                continue
            origin = OriginKey(self.s.source.id, self.plan.remote_name, self.key.uidvalidity, uid)
            links.append(
                LinkedMessage(self.mailbox_id, message_id, [*flags, self.s.keyword], origin)
            )
        self.s.store.link_messages(items=links, actor=self.s.actor)
        self.s.report.linked += len(links)
        return {uid for uid, key in keys.items() if key in copies}

    def _within_budget(
        self, planned: list[list[int]], sizes: dict[int, tuple[int, list[str], datetime | None]]
    ) -> list[list[int]]:
        """The leading messages today's budget allows, in their batches (spent as they
        commit); the first message of a day may exceed it, or it could never be fetched."""
        allowed: list[list[int]] = []
        ahead = 0
        for batch in planned:
            kept: list[int] = []
            for uid in batch:
                size = sizes[uid][0]
                if not self.s.budget.allows(size, ahead=ahead):
                    if kept:
                        allowed.append(kept)
                    return allowed
                ahead += size
                kept.append(uid)
            allowed.append(kept)
        return allowed

    def _account(
        self,
        batch: list[int],
        results: list[AppendResult],
        sizes: dict[int, tuple[int, list[str], datetime | None]],
        adopted: set[int],
    ) -> None:
        """A batch is durable: count it, spend the budget, move the resume point."""
        stored = 0
        for uid, result in zip(batch, results, strict=True):
            size = sizes[uid][0]
            self.s.budget.spend(size)
            if result.adopted:
                adopted.add(uid)
                self.s.report.adopted += 1
            elif not result.duplicate:
                stored += 1
                self.s.report.fetched += 1
                self.s.report.bytes += size
        self._save_resume(max(batch))
        if self.s.on_progress is not None:
            self.s.on_progress(stored, sum(sizes[u][0] for u in batch))

    def _save_resume(self, last_uid: int) -> None:
        saved = self.saved
        self._save(
            self.key.uidvalidity,
            max(
                last_uid,
                saved.last_uid if saved and saved.uidvalidity == self.key.uidvalidity else 0,
            ),
            saved.highestmodseq if saved and saved.uidvalidity == self.key.uidvalidity else 0,
            saved.local_modseq if saved else self._local_highestmodseq(),
        )

    def _batches(
        self, uids: list[int], sizes: dict[int, tuple[int, list[str], datetime | None]]
    ) -> Iterator[list[int]]:
        batch: list[int] = []
        total = 0
        for uid in uids:
            size = sizes[uid][0]
            if size > self.s.store.max_message_size:
                self.s.report.skipped_too_large += 1
                log.warning(
                    "event=imap_message_skipped source_id=%d folder=%r uid=%d size=%d "
                    "reason=larger_than_max_message_size",
                    self.s.source.id,
                    self.plan.remote_name,
                    uid,
                    size,
                )
                continue
            if size > STREAM_THRESHOLD:
                if batch:
                    yield batch
                    batch, total = [], 0
                yield [uid]
                continue
            if batch and total + size > BATCH_BYTES:
                yield batch
                batch, total = [], 0
            batch.append(uid)
            total += size
            if len(batch) >= BATCH_MESSAGES:
                yield batch
                batch, total = [], 0
        if batch:
            yield batch

    def _download(
        self,
        batch: list[int],
        sizes: dict[int, tuple[int, list[str], datetime | None]],
        adopt: AdoptRule | None,
    ) -> Iterator[NewMessage]:
        if len(batch) == 1 and sizes[batch[0]][0] > STREAM_THRESHOLD:
            bodies: dict[int, Any] = {batch[0]: self._stream(batch[0], sizes[batch[0]][0])}
        else:
            fetched = uid_fetch(self.client, sequence_set(batch), "BODY.PEEK[]")
            bodies = {uid: data.get(b"BODY[]") for uid, data in fetched.items()}
        for uid in batch:
            body = bodies.get(uid)
            if body is None:
                raise SyncError("protocol", f"server returned no body for UID {uid}")
            _size, flags, internal_date = sizes[uid]
            yield NewMessage(
                mailbox_id=self.mailbox_id,
                content=body,
                flags=[*flags, self.s.keyword],
                internal_date=internal_date,
                origin=OriginKey(
                    self.s.source.id, self.plan.remote_name, self.key.uidvalidity, uid
                ),
                adopt=adopt,
            )

    def _stream(self, uid: int, size: int) -> Iterator[bytes]:
        """The message in 1 MiB partial fetches, so memory stays flat however large it is."""
        offset = 0
        while offset < size:
            item = f"BODY.PEEK[]<{offset}.{PARTIAL_CHUNK}>"
            data = uid_fetch(self.client, str(uid), item).get(uid, {})
            chunk = data.get(f"BODY[]<{offset}>".encode())
            if not chunk:
                break
            yield bytes(chunk)
            offset += len(chunk)

    # --- 2. flags --------------------------------------------------------------------

    def _remote_flag_changes(
        self, last_uid: int, last_modseq: int, modseq: int
    ) -> tuple[dict[int, FlagState], set[int] | None]:
        """Remote flags of messages that may have changed, and (on a full scan) every
        remote UID up to the resume point, which the deletion pass can reuse."""
        if last_uid == 0:
            return {}, None
        condstore = "CONDSTORE" in self.s.capabilities and last_modseq > 0 and modseq > 0
        if condstore and modseq <= last_modseq:
            return {}, None
        fetched = uid_fetch(
            self.client,
            f"1:{last_uid}",
            "FLAGS",
            modifiers=f"CHANGEDSINCE {last_modseq}" if condstore else None,
        )
        flags = {uid: _flag_state(data) for uid, data in fetched.items() if uid <= last_uid}
        return flags, None if condstore else set(flags)

    def _local_changes(self, local_modseq: int) -> tuple[set[int], bool, set[int]]:
        """Local UIDs whose flags changed, whether anything was expunged, UIDs appended —
        by anyone but this source's own sync."""
        changed: set[int] = set()
        appended: set[int] = set()
        expunged = False
        for change in self.s.store.changes_since(mailbox_id=self.mailbox_id, modseq=local_modseq):
            if change.actor == self.s.actor:
                continue
            if change.kind == "flags":
                changed.add(change.uid)
            elif change.kind == "append":
                appended.add(change.uid)
            elif change.kind == "expunge":
                expunged = True
        return changed, expunged, appended

    def _reconcile(
        self, remote: dict[int, FlagState], local_uids: set[int], *, full_scan: bool
    ) -> None:
        pairs = self.s.store.folder_pairs(
            self.key, mailbox_id=self.mailbox_id, remote_uids=list(remote), local_uids=local_uids
        )
        if full_scan:
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
        remote = {**remote, **self._remote_states(missing)}
        local_updates: dict[tuple[int, frozenset[str]], list[int]] = defaultdict(list)
        pushes: dict[tuple[str, str], list[int]] = defaultdict(list)
        agreed: list[tuple[int, int, frozenset[str]]] = []
        for pair in pairs:
            if pair.local_uid is None:
                continue  # gone locally: the removal pass decides what happens at the source
            base = FlagState(pair.synced_flags, pair.synced_keywords)
            local = FlagState(pair.local_flags, pair.local_keywords)
            current = remote.get(pair.remote_uid)
            if current is None:
                continue  # expunged at the source since; the deletion pass handles it
            result = merge_flags(base, local, current, remote_keywords=self.remote_keywords)
            merged = result.merged
            if result.both_changed:
                log.info(
                    "event=flags_conflict source_id=%d folder=%r uid=%d resolution=per_flag_merge",
                    self.s.source.id,
                    self.plan.remote_name,
                    pair.remote_uid,
                )
            local_keywords = merged.keywords | (
                pair.local_keywords - syncable_keywords(pair.local_keywords)
            )
            if (merged.bits, local_keywords) != (pair.local_flags, pair.local_keywords):
                local_updates[(merged.bits, local_keywords)].append(pair.local_uid)
            self._plan_push(pair.remote_uid, current, merged, pushes)
            agreed.append((pair.remote_uid, merged.bits, merged.keywords))
        for (bits, keywords), uids in local_updates.items():
            self.s.store.set_flags(
                mailbox_id=self.mailbox_id,
                uids=uids,
                flags=flag_names(bits, keywords),
                mode="replace",
                actor=self.s.actor,
            )
            self.s.report.flags_pulled += len(uids)
        for (action, flag), uids in pushes.items():
            uid_store(self.client, sequence_set(uids), action, [flag])
        self.s.report.flags_pushed += len({u for uids in pushes.values() for u in uids})
        self.s.store.record_synced_flags(self.key, states=agreed)

    def _plan_push(
        self,
        uid: int,
        current: FlagState,
        merged: FlagState,
        pushes: dict[tuple[str, str], list[int]],
    ) -> None:
        for name in flag_names(merged.bits & ~current.bits):
            pushes[("+FLAGS", name)].append(uid)
        for name in flag_names(current.bits & ~merged.bits):
            pushes[("-FLAGS", name)].append(uid)
        if not self.remote_keywords:
            return
        remote_kw = syncable_keywords(current.keywords)
        for name in sorted(merged.keywords - remote_kw):
            pushes[("+FLAGS", name)].append(uid)
        for name in sorted(remote_kw - merged.keywords):
            pushes[("-FLAGS", name)].append(uid)

    def _remote_states(self, uids: list[int]) -> dict[int, FlagState]:
        fetched = uid_fetch(self.client, sequence_set(uids), "FLAGS") if uids else {}
        return {uid: _flag_state(data) for uid, data in fetched.items()}

    # --- 3. deletions at the source ----------------------------------------------------

    def _pull_deletions(self, scanned: set[int] | None, scanned_up_to: int) -> None:
        """Expunge locally what the source no longer has. A FLAGS scan already listed every
        UID up to `scanned_up_to` (what was fetched above it just now is not in that list);
        otherwise counting tells whether anything went, and a UID SEARCH finds what."""
        known = self.s.store.known_remote_uids(self.key)
        if scanned is not None:
            gone = {uid for uid in known if uid <= scanned_up_to} - scanned
        else:
            # STATUS on the selected mailbox is not reliable (RFC 3501 §6.3.10): re-select.
            selected = self.client.select_folder(self.plan.remote_name)
            if int(selected.get(b"EXISTS", 0)) == len(known):
                return
            gone = known - set(self.client.search(["ALL"]))
        if not gone:
            return
        expunged = self.s.store.forget_remote_messages(
            self.key, remote_uids=gone, mailbox_id=self.mailbox_id, actor=self.s.actor
        )
        self.s.report.expunged_locally += len(expunged)
        log.info(
            "event=imap_removed_at_source source_id=%d folder=%r remote=%d local_expunged=%d",
            self.s.source.id,
            self.plan.remote_name,
            len(gone),
            len(expunged),
        )

    # --- 4. local removals to the source ---------------------------------------------

    def _push_removals(self) -> None:
        unpaired = self.s.store.folder_pairs(
            self.key, mailbox_id=self.mailbox_id, unpaired_only=True
        )
        if not unpaired:
            return
        holders = self.s.store.mailboxes_holding(
            message_ids=[p.message_id for p in unpaired if p.message_id is not None]
        )
        by_target: dict[str | None, list[RemotePair]] = defaultdict(list)
        for pair in unpaired:
            target = None
            for mailbox_id in holders.get(pair.message_id or -1, []):
                folder = self.s.folder_of_mailbox(mailbox_id)
                if folder is not None and folder != self.plan.remote_name:
                    target = folder
                    break
            by_target[target].append(pair)
        follow_moves = self.s.source.options.get("move_policy", "follow") == "follow"
        for target, pairs in by_target.items():
            if target is not None and follow_moves:
                self._move(pairs, target)
            elif target is not None:
                self.s.store.detach_remote_messages(
                    self.key, remote_uids=[p.remote_uid for p in pairs]
                )
            else:
                self._delete(pairs)

    def _delete(self, pairs: Sequence[RemotePair]) -> None:
        policy = str(self.s.source.options.get("delete_policy", "trash"))
        trash = self.s.special_folder("\\Trash")
        uids = [p.remote_uid for p in pairs]
        if policy == "trash" and trash is not None and trash != self.plan.remote_name:
            self._move(pairs, trash)
            return
        if policy == "expunge" and "UIDPLUS" in self.s.capabilities:
            uid_set = sequence_set(uids)
            uid_store(self.client, uid_set, "+FLAGS", ["\\Deleted"])
            uid_expunge(self.client, uid_set)
            self.s.store.forget_remote_messages(
                self.key, remote_uids=uids, mailbox_id=self.mailbox_id, actor=self.s.actor
            )
            self.s.report.deleted_at_source += len(uids)
            return
        # keep, or nowhere safe to put it: the source keeps its copy, we stop following it.
        self.s.store.detach_remote_messages(self.key, remote_uids=uids)
        log.info(
            "event=imap_removal_not_propagated source_id=%d folder=%r count=%d policy=%s",
            self.s.source.id,
            self.plan.remote_name,
            len(uids),
            policy,
        )

    def _upload(self, local_uids: set[int]) -> None:
        """Messages filed on a device into a folder only this source feeds go to the source
        (APPEND, flags and date kept); those that came from it are already there."""
        entries = self.s.store.unfollowed_entries(
            self.key, mailbox_id=self.mailbox_id, local_uids=local_uids
        )
        if not entries:
            return
        metadata = self.s.store.get_messages(message_ids=[e.message_id for e in entries])
        for entry in entries:
            keywords = syncable_keywords(entry.keywords) if self.remote_keywords else frozenset()
            with self.s.store.open_message(message_id=entry.message_id) as handle:
                content = handle.read()
            response = self.client.append(
                self.plan.remote_name,
                content,
                flags=flag_names(entry.flags, keywords),
                msg_time=metadata[entry.message_id].internal_date,
            )
            match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
            if match is not None and int(match.group(1)) == self.key.uidvalidity:
                self.s.store.follow_remote_message(
                    self.key,
                    remote_uid=int(match.group(2)),
                    message_id=entry.message_id,
                    flags=entry.flags,
                    keywords=keywords,
                )
        self.s.report.uploaded += len(entries)
        log.info(
            "event=imap_uploaded source_id=%d folder=%r count=%d",
            self.s.source.id,
            self.plan.remote_name,
            len(entries),
        )

    def _move(self, pairs: Sequence[RemotePair], target: str) -> None:
        uids = [p.remote_uid for p in pairs]
        uid_set = sequence_set(uids)
        if "MOVE" in self.s.capabilities:
            copied = uid_transfer(self.client, "MOVE", uid_set, target)
        else:
            copied = uid_transfer(self.client, "COPY", uid_set, target)
            uid_store(self.client, uid_set, "+FLAGS", ["\\Deleted"])
            if "UIDPLUS" in self.s.capabilities:
                uid_expunge(self.client, uid_set)
        uidvalidity, mapping = copied if copied is not None else (0, {})
        destination = FolderKey(self.s.source.id, target, uidvalidity)
        for uid in uids:
            self.s.store.relocate_remote_message(
                self.key, remote_uid=uid, to=destination, new_uid=mapping.get(uid)
            )
        self.s.report.moved_at_source += len(uids)
        log.info(
            "event=imap_moved_at_source source_id=%d from=%r to=%r count=%d copyuid=%s",
            self.s.source.id,
            self.plan.remote_name,
            target,
            len(uids),
            copied is not None,
        )


def _runs(
    batches: list[list[int]], sizes: dict[int, tuple[int, list[str], datetime | None]]
) -> Iterator[list[list[int]]]:
    """Consecutive small-message batches together; each streamed message on its own."""
    run: list[list[int]] = []
    for batch in batches:
        if len(batch) == 1 and sizes[batch[0]][0] > STREAM_THRESHOLD:
            if run:
                yield run
                run = []
            yield [batch]
        else:
            run.append(batch)
    if run:
        yield run


def _differs(remote: FlagState, pair: RemotePair) -> bool:
    return remote.bits != pair.synced_flags or syncable_keywords(
        remote.keywords
    ) != syncable_keywords(pair.synced_keywords)


def message_id_of(header_block: object) -> str | None:
    """The Message-ID value from a `HEADER.FIELDS (MESSAGE-ID)` answer, unfolded and
    stripped the way the store's analyser keeps it."""
    if not isinstance(header_block, bytes):
        return None
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", header_block)
    for line in unfolded.splitlines():
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            text = value.strip().decode("utf-8", "replace")
            return text or None
    return None


def _flag_state(data: dict[bytes, Any]) -> FlagState:
    return FlagState(*split_flags(_flag_text(f) for f in data.get(b"FLAGS", ())))


def _flag_text(flag: object) -> str:
    return flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
