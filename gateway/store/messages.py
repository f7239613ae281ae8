"""Operations on messages already in a mailbox: flags, copy, move, expunge, change log, reads."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import BinaryIO, Literal, TypeAlias

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Row
from sqlmodel import Session, col, select

from gateway.store.base import StoreBase, change_row, chunked_ids, entry_info, entry_view
from gateway.store.errors import NotFoundError
from gateway.store.flags import DELETED, decode_keywords, encode_keywords, split_flags
from gateway.store.models import Change, MailboxEntry, Message, ServerState
from gateway.store.tables import CHANGES, MAILBOX_ENTRIES
from gateway.store.views import ChangeInfo, CopyResult, EntryInfo, FlagUpdate, MessageInfo

FlagMode = Literal["replace", "add", "remove"]
EntryRow: TypeAlias = "Row[int, int, int, int, str, int]"
_ENTRY_ROW_COLUMNS = (
    MAILBOX_ENTRIES.c.id,
    MAILBOX_ENTRIES.c.uid,
    MAILBOX_ENTRIES.c.message_id,
    MAILBOX_ENTRIES.c.flags,
    MAILBOX_ENTRIES.c.keywords,
    MAILBOX_ENTRIES.c.modseq,
)
_INSERT_CHANGE_NAMES = (
    "mailbox_id",
    "modseq",
    "uid",
    "kind",
    "flags",
    "keywords",
    "actor",
    "created_at",
)
_INSERT_CHANGE = insert(CHANGES).values({name: bindparam(name) for name in _INSERT_CHANGE_NAMES})
_UPDATE_ENTRY_FLAGS_NAMES = ("new_flags", "new_keywords", "new_modseq", "entry_id")
_UPDATE_ENTRY_FLAGS = (
    update(MAILBOX_ENTRIES)
    .where(MAILBOX_ENTRIES.c.id == bindparam("entry_id"))
    .values(
        flags=bindparam("new_flags"),
        keywords=bindparam("new_keywords"),
        modseq=bindparam("new_modseq"),
    )
)
# Above this many UIDs, reading the whole mailbox and filtering beats a huge IN (...) list.
_IN_LIST_LIMIT = 500


class MessageOperations(StoreBase):
    def list_entries(self, *, mailbox_id: int) -> list[EntryInfo]:
        """Every entry of a mailbox in UID order: a session's in-memory UID map."""
        with self.database.read() as session:
            rows = session.exec(
                select(MailboxEntry)
                .where(MailboxEntry.mailbox_id == mailbox_id)
                .order_by(col(MailboxEntry.uid))
            )
            return [entry_view(entry) for entry in rows]

    def set_flags(
        self,
        *,
        mailbox_id: int,
        uids: Collection[int] | None,
        flags: Iterable[str],
        mode: FlagMode = "replace",
        unchanged_since: int | None = None,
        actor: str = "",
    ) -> FlagUpdate:
        """Replace, add or remove flags on `uids` (None: all) with one new MODSEQ.

        Entries whose flags do not change keep their MODSEQ (RFC 7162 §3.2). The commit is
        announced to change listeners with `actor`; unless a sync engine made it, the fetch
        scheduler writes it back to the sources feeding the mailbox
        (`gateway.fetch.scheduler.FetchScheduler.write_back`).
        """
        bits, keywords = split_flags(flags)
        # A flag change lost to a power cut harms no mail: committed without an fsync.
        with self.database.write(durable=False) as session:
            mailbox = self._lock_mailboxes(session, mailbox_id)[mailbox_id]
            rows = self._select_entries(session, mailbox_id, uids)
            modified: list[int] = []
            kept: list[EntryInfo] = []
            updates: list[tuple[int, int, int, int, str]] = []  # id, uid, message_id, bits, kw
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    modified.append(row.uid)
                    continue
                new_bits, new_keywords = _apply(mode, row.flags, row.keywords, bits, keywords)
                if new_bits != row.flags or new_keywords != row.keywords:
                    updates.append((row.id, row.uid, row.message_id, new_bits, new_keywords))
                else:
                    kept.append(
                        entry_info(row.uid, row.message_id, row.flags, row.keywords, row.modseq)
                    )
            modseq = mailbox.highestmodseq
            if updates:
                _, modseq = self._bump_mailbox(session, mailbox_id, 0)
                now = datetime.now(UTC)
                connection = session.connection()
                self.database.raw_write(_UPDATE_ENTRY_FLAGS, _UPDATE_ENTRY_FLAGS_NAMES).run_many(
                    connection, [(b, k, modseq, e) for e, _, _, b, k in updates]
                )
                self.database.raw_write(_INSERT_CHANGE, _INSERT_CHANGE_NAMES).run_many(
                    connection,
                    [
                        (mailbox_id, modseq, uid, "flags", b, k, actor, now)
                        for _, uid, _, b, k in updates
                    ],
                )
            changed = [entry_info(uid, m, b, k, modseq) for _, uid, m, b, k in updates]
            entries = sorted(kept + changed, key=lambda entry: entry.uid) if kept else changed
            result = FlagUpdate(entries=entries, modseq=modseq, modified=modified)
            user_id = mailbox.user_id
        if updates:
            self._notify({mailbox_id: (user_id, modseq)}, actor)
        return result

    def copy_messages(
        self,
        *,
        from_mailbox_id: int,
        uids: Collection[int] | None,
        to_mailbox_id: int,
        actor: str = "",
    ) -> CopyResult:
        """Copy entries (content shared, flags kept) to another mailbox (RFC 3501 §6.4.7)."""
        with self.database.write() as session:
            result, changed = self._copy(session, from_mailbox_id, uids, to_mailbox_id, actor)
        self._notify(changed, actor)
        return result

    def move_messages(
        self,
        *,
        from_mailbox_id: int,
        uids: Collection[int] | None,
        to_mailbox_id: int,
        actor: str = "",
    ) -> CopyResult:
        """Copy then expunge from the source in one transaction (RFC 6851 atomicity).

        Into the same mailbox too, as Dovecot does: the messages get new UIDs at the end.
        """
        with self.database.write() as session:
            result, changed = self._copy(session, from_mailbox_id, uids, to_mailbox_id, actor)
            moved = [source_uid for source_uid, _ in result.uid_pairs]
            expunged, expunge_changed = self._expunge(
                session, from_mailbox_id, moved, actor, only_deleted=False
            )
            changed.update(expunge_changed)
        self._notify(changed, actor)
        return CopyResult(result.uidvalidity, result.uid_pairs, expunged)

    def expunge(
        self, *, mailbox_id: int, uids: Collection[int] | None = None, actor: str = ""
    ) -> list[int]:
        """Remove \\Deleted entries (only among `uids` for UID EXPUNGE); returns their UIDs.

        Committed without an fsync: a power cut can only bring an expunged message back (its
        file is removed later, by `collect_garbage`), never lose one.
        """
        with self.database.write(durable=False) as session:
            expunged, changed = self._expunge(session, mailbox_id, uids, actor, only_deleted=True)
        self._notify(changed, actor)
        return expunged

    def changes_since(self, *, mailbox_id: int, modseq: int) -> list[ChangeInfo]:
        """The change log after `modseq`, oldest first (CONDSTORE/QRESYNC, write-back)."""
        with self.database.read() as session:
            rows = session.exec(
                select(Change)
                .where(Change.mailbox_id == mailbox_id, col(Change.modseq) > modseq)
                .order_by(col(Change.modseq), col(Change.id))
            )
            return [
                ChangeInfo(
                    modseq=row.modseq,
                    uid=row.uid,
                    kind=row.kind,
                    flags=row.flags,
                    keywords=decode_keywords(row.keywords),
                    actor=row.actor,
                )
                for row in rows
            ]

    def get_messages(self, *, message_ids: Collection[int]) -> dict[int, MessageInfo]:
        """Precomputed content metadata for FETCH, in one query."""
        with self.database.read() as session:
            rows = session.exec(select(Message).where(col(Message.id).in_(set(message_ids))))
            return {row.id: _message_view(row) for row in rows if row.id is not None}

    def open_message(self, *, message_id: int) -> BinaryIO:
        """The raw bytes of a message as stored, byte for byte."""
        with self.database.read() as session:
            message = session.get(Message, message_id)
            if message is None:
                raise NotFoundError(f"no such message: {message_id}")
        return self.blobs.open(message.blob_hash)

    def collect_garbage(self, *, grace_seconds: float = 3600.0) -> int:
        """Delete blob files no message refers to (after the grace period); returns the count."""
        # Expunges commit without an fsync (`expunge`): make them durable first, or a power
        # cut could bring back a message whose file this removed.
        with self.database.write() as session:
            session.execute(
                update(ServerState).values(next_uidvalidity=col(ServerState.next_uidvalidity))
            )
        with self.database.read() as session:
            referenced = set(session.exec(select(Message.blob_hash).distinct()))
        # Queued outbound mail has a blob and no message row yet (outbound.py).
        referenced |= self.outbound_blob_hashes()  # type: ignore[attr-defined]
        return self.blobs.collect_garbage(referenced, grace_seconds=grace_seconds)

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _select_entries(
        session: Session, mailbox_id: int, uids: Collection[int] | None
    ) -> list[EntryRow]:
        """Entry rows (Core, not ORM: thousands per STORE) in UID order."""
        query = core_select(*_ENTRY_ROW_COLUMNS).where(MAILBOX_ENTRIES.c.mailbox_id == mailbox_id)
        if uids is not None and len(uids) <= _IN_LIST_LIMIT:
            query = query.where(MAILBOX_ENTRIES.c.uid.in_(set(uids)))
        rows = list(session.execute(query.order_by(MAILBOX_ENTRIES.c.uid)))
        if uids is not None and len(uids) > _IN_LIST_LIMIT:
            wanted = set(uids)
            rows = [row for row in rows if row.uid in wanted]
        return rows

    def _copy(
        self,
        session: Session,
        from_mailbox_id: int,
        uids: Collection[int] | None,
        to_mailbox_id: int,
        actor: str,
    ) -> tuple[CopyResult, dict[int, tuple[int, int]]]:
        target = self._lock_mailboxes(session, from_mailbox_id, to_mailbox_id)[to_mailbox_id]
        entries = self._select_entries(session, from_mailbox_id, uids)
        if not entries:
            return CopyResult(target.uidvalidity, []), {}
        first_uid, modseq = self._bump_mailbox(session, to_mailbox_id, len(entries))
        now = datetime.now(UTC)
        pairs = [(entry.uid, first_uid + offset) for offset, entry in enumerate(entries)]
        session.execute(
            insert(MAILBOX_ENTRIES),
            [
                {
                    "mailbox_id": to_mailbox_id,
                    "uid": new_uid,
                    "message_id": e.message_id,
                    "flags": e.flags,
                    "keywords": e.keywords,
                    "modseq": modseq,
                }
                for e, (_, new_uid) in zip(entries, pairs, strict=True)
            ],
        )
        session.execute(
            insert(CHANGES),
            [
                change_row(
                    mailbox_id=to_mailbox_id,
                    modseq=modseq,
                    uid=new_uid,
                    kind="append",
                    flags=e.flags,
                    keywords=e.keywords,
                    actor=actor,
                    now=now,
                )
                for e, (_, new_uid) in zip(entries, pairs, strict=True)
            ],
        )
        return CopyResult(target.uidvalidity, pairs), {to_mailbox_id: (target.user_id, modseq)}

    def _expunge(
        self,
        session: Session,
        mailbox_id: int,
        uids: Collection[int] | None,
        actor: str,
        *,
        only_deleted: bool,
    ) -> tuple[list[int], dict[int, tuple[int, int]]]:
        mailbox = self._lock_mailboxes(session, mailbox_id)[mailbox_id]
        entries = [
            e
            for e in self._select_entries(session, mailbox_id, uids)
            if not only_deleted or e.flags & DELETED
        ]
        if not entries:
            return [], {}
        _, modseq = self._bump_mailbox(session, mailbox_id, 0)
        now = datetime.now(UTC)
        for chunk in chunked_ids([e.id for e in entries if e.id is not None]):
            session.execute(delete(MailboxEntry).where(col(MailboxEntry.id).in_(chunk)))
        session.execute(
            insert(CHANGES),
            [
                change_row(
                    mailbox_id=mailbox_id,
                    modseq=modseq,
                    uid=e.uid,
                    kind="expunge",
                    flags=0,
                    keywords="",
                    actor=actor,
                    now=now,
                )
                for e in entries
            ],
        )
        self._delete_unreferenced_messages(session, {e.message_id for e in entries})
        return [e.uid for e in entries], {mailbox_id: (mailbox.user_id, modseq)}


def _apply(
    mode: FlagMode, flags: int, keywords_text: str, bits: int, keywords: frozenset[str]
) -> tuple[int, str]:
    if mode == "replace":
        return bits, encode_keywords(keywords)
    current = decode_keywords(keywords_text)
    if mode == "add":
        return flags | bits, encode_keywords(current | keywords) if keywords else keywords_text
    return flags & ~bits, encode_keywords(current - keywords) if keywords else keywords_text


def _message_view(row: Message) -> MessageInfo:
    assert row.id is not None  # noqa: S101
    return MessageInfo(
        id=row.id,
        blob_hash=row.blob_hash,
        size=row.size,
        internal_date=row.internal_date,
        sent_date=row.sent_date,
        envelope=row.envelope,
        bodystructure=row.bodystructure,
        body=row.body,
        parts_json=row.parts_json,
    )
