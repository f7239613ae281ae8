"""What the IMAP source engine keeps between syncs: folder positions and message pairings.

A *pair* is an origin (a message at the source: folder, UIDVALIDITY, UID, the flags both sides
last agreed on) with the local entry it feeds in the folder's mailbox, if that entry still
exists. Flag reconciliation and write-back are decided from pairs; this module only reads and
records them, in a few set-based statements per call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    update,
)
from sqlalchemy import select as core_select
from sqlmodel import col, select

from gateway.store.base import appended_rows, chunked_ids, entry_info
from gateway.store.flags import decode_keywords, encode_keywords, split_flags
from gateway.store.ingest import OriginKey, origin_row
from gateway.store.messages import MessageOperations
from gateway.store.models import MailboxEntry, Origin, SourceFolder
from gateway.store.tables import CHANGES, MAILBOX_ENTRIES, MESSAGES, ORIGINS
from gateway.store.views import AppendResult, EntryInfo


@dataclass(frozen=True)
class SourceFolderInfo:
    id: int
    source_id: int
    remote_name: str
    mailbox_id: int | None
    uidvalidity: int | None
    last_uid: int
    highestmodseq: int
    local_modseq: int


class RemotePair(NamedTuple):
    """A remote message, the flags last agreed on, and its local entry (None: gone locally)."""

    remote_uid: int
    message_id: int | None
    synced_flags: int
    synced_keywords: frozenset[str]
    local_uid: int | None
    local_flags: int
    local_keywords: frozenset[str]


@dataclass(frozen=True)
class LinkedMessage:
    """A stored message to enter into a mailbox, and where it was found at its source."""

    mailbox_id: int
    message_id: int
    flags: Sequence[str]
    origin: OriginKey


class FolderKey(NamedTuple):
    """One remote folder under one UIDVALIDITY: the scope every origin query runs in."""

    source_id: int
    remote_folder: str
    uidvalidity: int


class SourceSyncOperations(MessageOperations):
    def list_source_folders(self, *, source_id: int) -> list[SourceFolderInfo]:
        with self.database.read() as session:
            rows = session.exec(
                select(SourceFolder)
                .where(SourceFolder.source_id == source_id)
                .order_by(col(SourceFolder.id))
            )
            return [_folder_view(row) for row in rows]

    def sources_feeding(self, *, mailbox_ids: Collection[int]) -> set[int]:
        """Ids of the sources with a folder feeding one of these mailboxes: where a local
        change in them is written back (`FetchScheduler.write_back`)."""
        if not mailbox_ids:
            return set()
        with self.database.read() as session:
            rows = session.exec(
                select(SourceFolder.source_id)
                .where(col(SourceFolder.mailbox_id).in_(sorted(mailbox_ids)))
                .distinct()
            )
            return set(rows)

    def save_source_folder(
        self,
        *,
        source_id: int,
        remote_name: str,
        mailbox_id: int | None,
        uidvalidity: int | None,
        last_uid: int,
        highestmodseq: int,
        local_modseq: int,
    ) -> SourceFolderInfo:
        """Create or update a folder's position (one row per source and remote name)."""
        with self.database.write() as session:
            row = session.exec(
                select(SourceFolder).where(
                    SourceFolder.source_id == source_id, SourceFolder.remote_name == remote_name
                )
            ).first()
            if row is None:
                row = SourceFolder(source_id=source_id, remote_name=remote_name)
            row.mailbox_id = mailbox_id
            row.uidvalidity = uidvalidity
            row.last_uid = last_uid
            row.highestmodseq = highestmodseq
            row.local_modseq = local_modseq
            session.add(row)
            session.flush()
            return _folder_view(row)

    def delete_source_folder(self, *, source_id: int, remote_name: str) -> None:
        """The folder is gone at the source (or no longer chosen): stop following it."""
        with self.database.write() as session:
            session.execute(
                delete(SourceFolder).where(
                    col(SourceFolder.source_id) == source_id,
                    col(SourceFolder.remote_name) == remote_name,
                )
            )
            session.execute(
                delete(Origin).where(
                    col(Origin.source_id) == source_id, col(Origin.remote_folder) == remote_name
                )
            )

    def known_remote_uids(self, folder: FolderKey, *, above: int = 0) -> set[int]:
        """Remote UIDs of the folder that have an origin (stored, or known and detached)."""
        with self.database.read() as session:
            rows = session.exec(
                select(Origin.remote_uid).where(*_in_folder(folder), col(Origin.remote_uid) > above)
            )
            return {uid for uid in rows if uid is not None}

    def count_remote_messages(self, folder: FolderKey) -> int:
        with self.database.read() as session:
            count = session.exec(
                select(func.count()).select_from(Origin).where(*_in_folder(folder))
            ).one()
            return int(count)

    def folder_pairs(
        self,
        folder: FolderKey,
        *,
        mailbox_id: int,
        remote_uids: Collection[int] | None = None,
        local_uids: Collection[int] | None = None,
        unpaired_only: bool = False,
    ) -> list[RemotePair]:
        """Pairs of the folder, all or those matching the remote or local UIDs given.

        `unpaired_only`: followed origins whose local entry left the mailbox (moved away or
        expunged on a device) — the candidates for propagating moves and deletions.
        """
        entry = and_(
            col(MailboxEntry.mailbox_id) == mailbox_id,
            col(MailboxEntry.message_id) == col(Origin.message_id),
        )
        query = (
            core_select(
                ORIGINS.c.remote_uid,
                ORIGINS.c.message_id,
                ORIGINS.c.synced_flags,
                ORIGINS.c.synced_keywords,
                MAILBOX_ENTRIES.c.uid,
                MAILBOX_ENTRIES.c.flags,
                MAILBOX_ENTRIES.c.keywords,
            )
            .outerjoin(MailboxEntry, entry)
            .where(*_in_folder(folder))
        )
        if unpaired_only:
            query = query.where(col(Origin.detached).is_(False), col(MailboxEntry.id).is_(None))
        pairs: list[RemotePair] = []
        if remote_uids is None and local_uids is None:
            pairs.extend(_pair(session_rows) for session_rows in self._rows(query))
            return pairs
        for chunk in chunked_ids(sorted(remote_uids or ())):
            pairs.extend(
                _pair(row) for row in self._rows(query.where(col(Origin.remote_uid).in_(chunk)))
            )
        for chunk in chunked_ids(sorted(local_uids or ())):
            pairs.extend(
                _pair(row) for row in self._rows(query.where(col(MailboxEntry.uid).in_(chunk)))
            )
        unique = {pair.remote_uid: pair for pair in pairs}
        return [unique[uid] for uid in sorted(unique)]

    def _rows(self, query: Select[Any]) -> list[Row[Any]]:
        with self.database.read() as session:
            return list(session.execute(query))

    def unfollowed_entries(
        self, folder: FolderKey, *, mailbox_id: int, local_uids: Collection[int]
    ) -> list[EntryInfo]:
        """Entries among `local_uids` whose message has no origin in this remote folder:
        filed here on a device, not yet at the source."""
        followed = (
            core_select(ORIGINS.c.id)
            .where(*_in_folder(folder))
            .where(ORIGINS.c.message_id == MAILBOX_ENTRIES.c.message_id)
        )
        found: list[EntryInfo] = []
        with self.database.read() as session:
            for chunk in chunked_ids(sorted(local_uids)):
                rows = session.execute(
                    core_select(
                        MAILBOX_ENTRIES.c.uid,
                        MAILBOX_ENTRIES.c.message_id,
                        MAILBOX_ENTRIES.c.flags,
                        MAILBOX_ENTRIES.c.keywords,
                        MAILBOX_ENTRIES.c.modseq,
                    )
                    .where(MAILBOX_ENTRIES.c.mailbox_id == mailbox_id)
                    .where(MAILBOX_ENTRIES.c.uid.in_(chunk))
                    .where(~followed.exists())
                )
                found.extend(entry_info(*row) for row in rows)
        return found

    def follow_remote_message(
        self,
        folder: FolderKey,
        *,
        remote_uid: int,
        message_id: int,
        flags: int,
        keywords: frozenset[str],
    ) -> None:
        """A message we put at the source ourselves (APPEND): remember where it went."""
        with self.database.write() as session:
            session.execute(
                insert(ORIGINS).values(
                    source_id=folder.source_id,
                    remote_folder=folder.remote_folder,
                    uidvalidity=folder.uidvalidity,
                    remote_uid=remote_uid,
                    message_id=message_id,
                    synced_flags=flags,
                    synced_keywords=encode_keywords(keywords),
                    detached=False,
                    fetched_at=datetime.now(UTC),
                )
            )

    def find_source_copies(
        self, *, source_id: int, keys: Collection[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """(Message-ID, size) → id of a message this source already delivered with them:
        the same message in a second folder (a Gmail label) needs no second download."""
        found: dict[tuple[str, int], int] = {}
        wanted = set(keys)
        headers = sorted({header for header, _ in wanted})
        with self.database.read() as session:
            for start in range(0, len(headers), 500):
                rows = session.execute(
                    core_select(MESSAGES.c.message_id_header, MESSAGES.c.size, MESSAGES.c.id)
                    .join(ORIGINS, ORIGINS.c.message_id == MESSAGES.c.id)
                    .where(ORIGINS.c.source_id == source_id)
                    .where(MESSAGES.c.message_id_header.in_(headers[start : start + 500]))
                )
                for header, size, message_id in rows:
                    if (header, size) in wanted:
                        found.setdefault((header, size), message_id)
        return found

    def link_messages(self, *, items: Sequence[LinkedMessage], actor: str) -> list[AppendResult]:
        """Give messages the store already holds an entry in another mailbox (one new UID
        each, flags as given) and their new origins; content is shared, nothing is copied."""
        if not items:
            return []
        now = datetime.now(UTC)
        changed: dict[int, tuple[int, int]] = {}
        results: list[AppendResult] = []
        with self.database.write() as session:
            by_mailbox: dict[int, list[LinkedMessage]] = defaultdict(list)
            for item in items:
                by_mailbox[item.mailbox_id].append(item)
            for mailbox_id, linked in by_mailbox.items():
                mailbox = self._lock_mailboxes(session, mailbox_id)[mailbox_id]
                first_uid, modseq = self._bump_mailbox(session, mailbox_id, len(linked))
                changed[mailbox_id] = (mailbox.user_id, modseq)
                entries, changes, origins = [], [], []
                for offset, item in enumerate(linked):
                    uid = first_uid + offset
                    bits, keywords = split_flags(item.flags)
                    entry, change = appended_rows(
                        mailbox_id=mailbox_id,
                        uid=uid,
                        message_id=item.message_id,
                        flags=bits,
                        keywords=encode_keywords(keywords),
                        modseq=modseq,
                        actor=actor,
                        now=now,
                    )
                    entries.append(entry)
                    changes.append(change)
                    origins.append(origin_row(item.origin, item.message_id, now, item.flags))
                    results.append(
                        AppendResult(mailbox_id, mailbox.uidvalidity, uid, item.message_id)
                    )
                connection = session.connection()
                self.database.insert_rows(connection, MAILBOX_ENTRIES, entries)
                self.database.insert_rows(connection, CHANGES, changes)
                self.database.insert_rows(connection, ORIGINS, origins)
        self._notify(changed, actor)
        return results

    def record_synced_flags(
        self, folder: FolderKey, *, states: Iterable[tuple[int, int, frozenset[str]]]
    ) -> None:
        """Remember, per remote UID, the (flags, keywords) both sides now agree on."""
        rows = [
            {"uid": uid, "bits": bits, "keywords": encode_keywords(keywords)}
            for uid, bits, keywords in states
        ]
        if not rows:
            return
        statement = (
            update(Origin)
            .where(*_in_folder(folder), col(Origin.remote_uid) == bindparam("uid"))
            .values(synced_flags=bindparam("bits"), synced_keywords=bindparam("keywords"))
        )
        with self.database.write() as session:
            session.connection().execute(statement, rows)

    def forget_remote_messages(
        self, folder: FolderKey, *, remote_uids: Collection[int], mailbox_id: int, actor: str
    ) -> list[int]:
        """Messages gone at the source: drop their origins and expunge the local entries no
        other origin still backs (a message kept by a second account stays). Returns the
        local UIDs expunged."""
        if not remote_uids:
            return []
        with self.database.write() as session:
            message_ids: set[int] = set()
            for chunk in chunked_ids(sorted(remote_uids)):
                in_chunk = (*_in_folder(folder), col(Origin.remote_uid).in_(chunk))
                message_ids.update(
                    m for m in session.exec(select(Origin.message_id).where(*in_chunk)) if m
                )
                session.execute(delete(Origin).where(*in_chunk))
            still_backed = {
                m
                for chunk in chunked_ids(sorted(message_ids))
                for m in session.exec(
                    select(Origin.message_id).where(
                        col(Origin.message_id).in_(chunk), col(Origin.detached).is_(False)
                    )
                )
            }
            orphaned = message_ids - still_backed
            uids = [
                uid
                for chunk in chunked_ids(sorted(orphaned))
                for uid in session.exec(
                    select(MailboxEntry.uid).where(
                        MailboxEntry.mailbox_id == mailbox_id,
                        col(MailboxEntry.message_id).in_(chunk),
                    )
                )
            ]
            if not uids:
                return []
            expunged, changed = self._expunge(session, mailbox_id, uids, actor, only_deleted=False)
        self._notify(changed, actor)
        return list(expunged)

    def relocate_remote_message(
        self, folder: FolderKey, *, remote_uid: int, to: FolderKey, new_uid: int | None
    ) -> None:
        """A message moved at the source by us: follow it to its new folder and UID.

        `new_uid` None (no UIDPLUS): the new UID is unknown, so the origin is dropped; the
        destination's next sync then finds the message by content (`adopt="content"`).
        An origin whose local copy is gone becomes detached: known there, never fetched.
        """
        with self.database.write() as session:
            where = (*_in_folder(folder), col(Origin.remote_uid) == remote_uid)
            if new_uid is None:
                session.execute(delete(Origin).where(*where))
                return
            session.execute(
                update(Origin)
                .where(*where)
                .values(
                    remote_folder=to.remote_folder,
                    uidvalidity=to.uidvalidity,
                    remote_uid=new_uid,
                    detached=col(Origin.message_id).is_(None),
                )
            )

    def detach_remote_messages(self, folder: FolderKey, *, remote_uids: Collection[int]) -> None:
        """Stop following these remote messages (their local copies left; the remote stays)."""
        with self.database.write() as session:
            for chunk in chunked_ids(sorted(remote_uids)):
                session.execute(
                    update(Origin)
                    .where(*_in_folder(folder), col(Origin.remote_uid).in_(chunk))
                    .values(detached=True)
                )

    def drop_stale_origins(self, *, source_id: int, remote_folder: str, uidvalidity: int) -> int:
        """After a UIDVALIDITY change is fully resynced, the old UIDs mean nothing any more.

        Local messages stay: those found again were adopted by content; the rest are kept
        rather than deleted on the word of a server that just renumbered its folder.
        """
        with self.database.write() as session:
            result = session.execute(
                delete(Origin).where(
                    col(Origin.source_id) == source_id,
                    col(Origin.remote_folder) == remote_folder,
                    or_(
                        col(Origin.uidvalidity) != uidvalidity,
                        col(Origin.uidvalidity).is_(None),
                    ),
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def mailboxes_holding(self, *, message_ids: Collection[int]) -> dict[int, list[int]]:
        """message id → ids of the mailboxes that hold an entry for it."""
        found: dict[int, list[int]] = defaultdict(list)
        with self.database.read() as session:
            for chunk in chunked_ids(sorted(message_ids)):
                rows = session.exec(
                    select(MailboxEntry.message_id, MailboxEntry.mailbox_id).where(
                        col(MailboxEntry.message_id).in_(chunk)
                    )
                )
                for message_id, mailbox_id in rows:
                    found[message_id].append(mailbox_id)
        return dict(found)


def _in_folder(folder: FolderKey) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Origin.source_id) == folder.source_id,
        col(Origin.remote_folder) == folder.remote_folder,
        col(Origin.uidvalidity) == folder.uidvalidity,
    )


def _pair(row: Row[Any]) -> RemotePair:
    remote_uid, message_id, synced_flags, synced_keywords, uid, flags, keywords = tuple(row)
    return RemotePair(
        remote_uid=int(remote_uid),
        message_id=None if message_id is None else int(message_id),
        synced_flags=int(synced_flags or 0),
        synced_keywords=decode_keywords(str(synced_keywords or "")),
        local_uid=None if uid is None else int(uid),
        local_flags=int(flags or 0),
        local_keywords=decode_keywords(str(keywords or "")),
    )


def _folder_view(row: SourceFolder) -> SourceFolderInfo:
    assert row.id is not None  # noqa: S101
    return SourceFolderInfo(
        id=row.id,
        source_id=row.source_id,
        remote_name=row.remote_name,
        mailbox_id=row.mailbox_id,
        uidvalidity=row.uidvalidity,
        last_uid=row.last_uid,
        highestmodseq=row.highestmodseq,
        local_modseq=row.local_modseq,
    )
