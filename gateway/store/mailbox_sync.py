"""Reads that keep an IMAP session's in-memory view of a selected mailbox current.

A session loads the whole mailbox once (`load_mailbox`), then asks only for what changed
after the highest MODSEQ it knows (`mailbox_delta`). Both read one snapshot, so the view
a session builds is always a state the mailbox really had.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from gateway.store.base import StoreBase, chunked_ids, entry_info, mailbox_view
from gateway.store.errors import NotFoundError
from gateway.store.tables import (
    CHANGES,
    MAILBOX_ENTRIES,
    MAILBOX_INFO_COLUMNS,
    MAILBOXES,
    MESSAGES,
)
from gateway.store.views import EntryInfo, MailboxInfo

_ENTRY_COLUMNS = (
    MAILBOX_ENTRIES.c.uid,
    MAILBOX_ENTRIES.c.message_id,
    MAILBOX_ENTRIES.c.flags,
    MAILBOX_ENTRIES.c.keywords,
    MAILBOX_ENTRIES.c.modseq,
    MESSAGES.c.blob_hash,
)
_ENTRIES_WITH_BLOBS = MAILBOX_ENTRIES.join(MESSAGES, MESSAGES.c.id == MAILBOX_ENTRIES.c.message_id)


@dataclass(frozen=True)
class MailboxSnapshot:
    """A mailbox and every entry in UID order, as of `mailbox.highestmodseq`.

    `blob_hashes` (message id -> blob) lets a FETCH of a message's bytes find its file without
    asking the database (`gateway/imap/loop_fetch.py`).
    """

    mailbox: MailboxInfo
    entries: list[EntryInfo]
    blob_hashes: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MailboxDelta:
    """What changed after a MODSEQ: entries appended or re-flagged, UIDs expunged."""

    mailbox: MailboxInfo
    changed: list[EntryInfo]
    expunged: list[int]
    blob_hashes: dict[int, str] = field(default_factory=dict)


class MailboxSyncOperations(StoreBase):
    def load_mailbox(self, *, mailbox_id: int) -> MailboxSnapshot:
        """The mailbox row and all its entries from one snapshot (SELECT/EXAMINE)."""
        with self.database.snapshot() as session:
            mailbox = mailbox_view(self._mailbox(session, mailbox_id))
            rows = self.database.raw_query(_ALL_ENTRIES).run(
                session.connection(), {"mailbox_id": mailbox_id}
            )
            entries, blob_hashes = _entries_and_blobs(rows)
            return MailboxSnapshot(mailbox, entries, blob_hashes)

    def mailbox_delta(self, *, mailbox_id: int, since_modseq: int) -> MailboxDelta:
        """Entries with MODSEQ > `since_modseq` and UIDs expunged after it, from one snapshot.

        Every session on a mailbox asks this after each change another one commits (ten
        imaptest clients: most of the reads), so its three statements are compiled once and
        run on the bare cursor, without ORM loading.
        """
        params = {"mailbox_id": mailbox_id, "modseq": since_modseq}
        with self.database.snapshot() as session:
            connection = session.connection()
            found = self.database.raw_query(_MAILBOX_BY_ID).run(connection, params)
            if not found:
                raise NotFoundError(f"no such mailbox: {mailbox_id}")
            mailbox = MailboxInfo(*found[0])
            if mailbox.noselect:
                raise NotFoundError(f"mailbox was deleted: {mailbox.name}")
            if mailbox.highestmodseq <= since_modseq:
                return MailboxDelta(mailbox, [], [])
            rows = self.database.raw_query(_ENTRIES_AFTER).run(connection, params)
            changed, blob_hashes = _entries_and_blobs(rows)
            expunged = self.database.raw_query(_EXPUNGED_AFTER).run(connection, params)
            return MailboxDelta(mailbox, changed, [row[0] for row in expunged], blob_hashes)

    def highest_modseqs(self, *, mailbox_ids: Collection[int]) -> dict[int, int]:
        """HIGHESTMODSEQ of each mailbox, in one query: how a watcher notices other processes."""
        result: dict[int, int] = {}
        with self.database.read() as session:
            for chunk in chunked_ids(sorted(mailbox_ids)):
                rows = session.execute(
                    select(MAILBOXES.c.id, MAILBOXES.c.highestmodseq).where(
                        MAILBOXES.c.id.in_(chunk)
                    )
                )
                result.update((int(row[0]), int(row[1])) for row in rows)
        return result

    def expunged_since(self, *, mailbox_id: int, modseq: int) -> list[int]:
        """UIDs expunged after `modseq`, ascending (QRESYNC VANISHED (EARLIER))."""
        with self.database.read() as session:
            return self._expunged_after(session, mailbox_id, modseq)

    @staticmethod
    def _expunged_after(session: Session, mailbox_id: int, modseq: int) -> list[int]:
        rows = session.execute(
            select(CHANGES.c.uid)
            .where(
                CHANGES.c.mailbox_id == mailbox_id,
                CHANGES.c.modseq > modseq,
                CHANGES.c.kind == "expunge",
            )
            .order_by(CHANGES.c.uid)
        )
        return [int(row[0]) for row in rows]


# Built once: thousands of rows per SELECT go through a bare cursor (Database.raw_query).
_MAILBOX_BY_ID = select(*MAILBOX_INFO_COLUMNS).where(MAILBOXES.c.id == bindparam("mailbox_id"))
_EXPUNGED_AFTER = (
    select(CHANGES.c.uid)
    .where(
        CHANGES.c.mailbox_id == bindparam("mailbox_id"),
        CHANGES.c.modseq > bindparam("modseq"),
        CHANGES.c.kind == "expunge",
    )
    .order_by(CHANGES.c.uid)
)
_ALL_ENTRIES = (
    select(*_ENTRY_COLUMNS)
    .select_from(_ENTRIES_WITH_BLOBS)
    .where(MAILBOX_ENTRIES.c.mailbox_id == bindparam("mailbox_id"))
    .order_by(MAILBOX_ENTRIES.c.uid)
)
_ENTRIES_AFTER = (
    select(*_ENTRY_COLUMNS)
    .select_from(_ENTRIES_WITH_BLOBS)
    .where(
        MAILBOX_ENTRIES.c.mailbox_id == bindparam("mailbox_id"),
        MAILBOX_ENTRIES.c.modseq > bindparam("modseq"),
    )
    .order_by(MAILBOX_ENTRIES.c.uid)
)


def _entries_and_blobs(
    rows: list[tuple[Any, ...]],
) -> tuple[list[EntryInfo], dict[int, str]]:
    """Entries from `_ENTRY_COLUMNS` rows, and the blob of each entry's message."""
    entries = [entry_info(uid, m, flags, kw, modseq) for uid, m, flags, kw, modseq, _ in rows]
    return entries, {row[1]: row[5] for row in rows}
