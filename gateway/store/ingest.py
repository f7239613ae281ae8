"""The one way mail enters the store: stream → blob + analysis → group commit.

Raw bytes are never altered or rejected for being malformed (DESIGN invariant 6); the only
refusal is size. Acknowledge nothing before `append_messages` returns: by then the blobs are
fsynced and the rows committed (DESIGN invariant 1).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from sqlalchemy import bindparam, insert
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.store.base import POOL_MIN_BATCH, StoreBase, appended_rows, log
from gateway.store.blobs import PendingBlob
from gateway.store.errors import MessageTooLargeError, NotFoundError
from gateway.store.flags import encode_keywords, split_flags
from gateway.store.models import Origin
from gateway.store.tables import (
    CHANGES,
    MAILBOX_ENTRIES,
    MAILBOXES,
    MESSAGE_TEXTS,
    MESSAGES,
    ORIGINS,
)
from gateway.store.views import AppendResult

if TYPE_CHECKING:
    from gateway.ingest_worker import MessageColumns

# gateway.ingest_worker and gateway.mime are imported where mail is ingested, not here: every
# `gateway` command imports the store, and most (`user list`) never parse a message.

MessageContent = bytes | Iterable[bytes]
_CHUNK = 256 * 1024
_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class OriginKey:
    """Identity of a message at its source (DESIGN invariant 2)."""

    source_id: int
    remote_folder: str | None = None
    uidvalidity: int | None = None
    remote_uid: int | None = None
    uidl: str | None = None
    content_hash: str | None = None

    def dedupe_key(self) -> tuple[object, ...]:
        if self.uidl is not None:
            return (self.source_id, "uidl", self.uidl)
        return (self.source_id, self.remote_folder, self.uidvalidity, self.remote_uid)


# How an incoming message may be recognised as one the mailbox already holds, so that it gets
# the existing entry (and its local flags) plus a new origin instead of a second copy:
# "content" — the same bytes (a source reset its UIDVALIDITY, or moved it without UIDPLUS);
# "message-id" — the same Message-ID from another source (a CC to two of the user's accounts).
AdoptRule = Literal["content", "message-id"]


@dataclass(frozen=True)
class NewMessage:
    """A message to append: where, what, with which flags, and where it came from."""

    mailbox_id: int
    content: MessageContent
    flags: Sequence[str] = ()
    internal_date: datetime | None = None
    origin: OriginKey | None = None
    adopt: AdoptRule | None = None


@dataclass
class _Batch:
    """A batch on its way in: which items went to worker processes, and their results."""

    items: Sequence[NewMessage]
    search_text: bool = True
    offloaded: list[int] = field(default_factory=list)
    results: Iterator[tuple[Path, str, MessageColumns]] | None = None


@dataclass
class _Prepared:
    item: NewMessage
    blob: PendingBlob
    columns: MessageColumns
    # Set when the blob is being made durable in the background (`BlobStore.commit_soon`).
    durable: Future[None] | None = None


def _discard(prepared: Iterable[_Prepared]) -> None:
    """Drop the files of messages that will not be stored; one already renamed into place by
    `commit_soon` stays for `gc` (another message may share its content)."""
    for entry in prepared:
        if entry.durable is not None:
            with contextlib.suppress(Exception):
                entry.durable.result()  # let the flush finish before removing its temp file
        entry.blob.discard()


def _chunks(content: MessageContent) -> Iterable[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
    else:
        yield from content


class IngestOperations(StoreBase):
    def append_message(
        self,
        *,
        mailbox_id: int,
        content: MessageContent,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
        origin: OriginKey | None = None,
        actor: str = "",
        defer_search_text: bool = False,
    ) -> AppendResult:
        """Store one message durably and give it the next UID of the mailbox
        (`defer_search_text` as for `append_messages`)."""
        item = NewMessage(mailbox_id, content, flags, internal_date, origin)
        (result,) = self.append_messages(
            items=[item], actor=actor, defer_search_text=defer_search_text
        )
        return result

    def append_messages(
        self, *, items: Sequence[NewMessage], actor: str = "", defer_search_text: bool = False
    ) -> list[AppendResult]:
        """Store many messages with one blob sync and one commit (group commit).

        `defer_search_text`: leave decoding the body text for SEARCH to the search indexer
        (`search_index.py`), as fetchers do; SEARCH reads those messages' blobs until then.
        """
        return self._commit_batch(self._start_batch(items, not defer_search_text), actor)

    def append_message_batches(
        self,
        *,
        batches: Iterable[Sequence[NewMessage]],
        actor: str = "",
        defer_search_text: bool = False,
    ) -> Iterator[list[AppendResult]]:
        """Group-commit each batch, analysing batch k+1 in the workers while batch k commits.

        Yields each batch's results once it is durable: the moment a fetcher may acknowledge
        those messages at their source. For imports and first syncs of large folders.
        `defer_search_text` as for `append_messages`.
        """
        pending: _Batch | None = None
        source = iter(batches)
        while True:
            try:
                items = next(source)
            except StopIteration:
                break
            except BaseException:
                # The next batch could not be produced (a dropped download): the one already
                # in hand is still committed, then the failure goes on to the caller.
                if pending is not None:
                    yield self._commit_batch(pending, actor)
                raise
            started = self._start_batch(items, not defer_search_text)
            if pending is not None:
                yield self._commit_batch(pending, actor)
            pending = started
        if pending is not None:
            yield self._commit_batch(pending, actor)

    def _start_batch(self, items: Sequence[NewMessage], search_text: bool) -> _Batch:
        """Hand in-memory messages to the worker processes (blob file, hash, analysis).

        That work is pure-Python CPU and would otherwise hold the GIL for most of a bulk
        ingest; this process keeps the database work. Streamed content is handled inline
        when the batch is committed.
        """
        pool = self._analysis_pool() if len(items) >= POOL_MIN_BATCH else None
        batch = _Batch(items=items, search_text=search_text)
        if pool is None:
            return batch
        for index, item in enumerate(items):
            if isinstance(item.content, bytes):
                if len(item.content) > self.max_message_size:
                    raise self._too_large()
                batch.offloaded.append(index)
        jobs = [
            (self.blobs.tmp_root, items[index].content, search_text) for index in batch.offloaded
        ]
        chunk = max(1, len(jobs) // (4 * self._ingest_workers))
        from gateway.ingest_worker import write_and_analyze

        try:
            batch.results = pool.map(write_and_analyze, jobs, chunksize=chunk)
        except BrokenProcessPool:
            self._drop_broken_pool()
            batch.offloaded.clear()
        return batch

    def _too_large(self) -> MessageTooLargeError:
        return MessageTooLargeError(
            f"message exceeds the maximum size of {self.max_message_size} octets"
        )

    def _collect_batch(self, batch: _Batch) -> list[_Prepared]:
        """Every item of the batch with its blob written: worker results, else done inline."""
        done: dict[int, _Prepared] = {}
        try:
            try:
                for index, (tmp_path, digest, columns) in zip(
                    batch.offloaded, batch.results or (), strict=True
                ):
                    item = batch.items[index]
                    size = len(item.content)  # type: ignore[arg-type]
                    done[index] = _Prepared(
                        item, PendingBlob.written(tmp_path, size, digest), columns
                    )
            except BrokenProcessPool:
                self._drop_broken_pool()
                for entry in done.values():
                    entry.blob.discard()
                done.clear()
            for index, item in enumerate(batch.items):
                if index not in done:
                    done[index] = self._prepare(item, batch.search_text)
        except BaseException:
            _discard(done.values())
            raise
        return [done[index] for index in range(len(batch.items))]

    def _commit_batch(self, batch: _Batch, actor: str) -> list[AppendResult]:
        prepared = self._collect_batch(batch)
        try:
            self.blobs.commit(entry.blob for entry in prepared if entry.durable is None)
            # Every file is durable before the rows that name it are written. Waiting here,
            # not inside the transaction, keeps the one SQLite writer slot free during the
            # fsync: under imaptest's ten concurrent clients, APPENDs waiting on their files
            # inside it held up every STORE and EXPUNGE (py-spy, docs/benchmarks.md).
            for entry in prepared:
                if entry.durable is not None:
                    entry.durable.result()
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                try:
                    with self.database.write() as session:
                        results, changed = self._insert_all(session, prepared, actor)
                    break
                except IntegrityError:
                    # Another writer ingested the same origin between our check and insert;
                    # the next attempt sees its row and reports a duplicate instead.
                    if attempt == _MAX_ATTEMPTS:
                        raise
                    log.info("event=ingest_retry reason=origin_race attempt=%d", attempt)
        except BaseException:
            _discard(prepared)
            raise
        self._notify(changed, actor)
        return results

    def _prepare(self, item: NewMessage, search_text: bool) -> _Prepared:
        from gateway.ingest_worker import message_columns
        from gateway.mime import MessageAnalyzer

        blob = self.blobs.begin()
        analyzer = MessageAnalyzer(search_text=search_text)
        durable: Future[None] | None = None
        try:
            if isinstance(item.content, bytes | bytearray | memoryview):
                # Whole in memory (an APPEND, a small batch): the file is made durable in a
                # helper thread while this one analyses the message.
                content = bytes(item.content)
                if len(content) > self.max_message_size:
                    raise self._too_large()
                blob.write(content)
                blob.close()
                durable = self.blobs.commit_soon(blob)
                chunks: Iterable[bytes] = _chunks(content)
            else:
                chunks = self._written(blob, item.content)
            for chunk in chunks:
                analyzer.feed(chunk)
            columns = message_columns(analyzer.finish(), search_text=search_text)
            return _Prepared(item=item, blob=blob, columns=columns, durable=durable)
        except BaseException:
            _discard([_Prepared(item=item, blob=blob, columns={}, durable=durable)])
            raise

    def _written(self, blob: PendingBlob, content: Iterable[bytes]) -> Iterator[bytes]:
        """Each chunk of a stream once it is in the blob file, refusing it past the size limit."""
        for chunk in content:
            if blob.size + len(chunk) > self.max_message_size:
                raise self._too_large()
            blob.write(chunk)
            yield chunk

    def _insert_all(
        self, session: Session, prepared: list[_Prepared], actor: str
    ) -> tuple[list[AppendResult], dict[int, tuple[int, int]]]:
        mailbox_ids = {entry.item.mailbox_id for entry in prepared}
        mailboxes = self._mailbox_keys(session, mailbox_ids)
        missing = mailbox_ids - set(mailboxes)
        if missing:
            raise NotFoundError(f"no such mailbox: {min(missing)}")

        results: list[AppendResult | None] = [None] * len(prepared)
        now = datetime.now(UTC)
        origin_rows_adopted: list[dict[str, object]] = []
        fresh: list[int] = []
        seen_keys: set[tuple[object, ...]] = set()
        stored = find_origins(session, (e.item.origin for e in prepared if e.item.origin))
        adoptable = _adoptable(session, prepared, {m.user_id for m in mailboxes.values()})
        for index, entry in enumerate(prepared):
            origin = entry.item.origin
            if origin is not None:
                key = origin.dedupe_key()
                existing = stored.get(key)
                if key in seen_keys or existing is not None:
                    mailbox = mailboxes[entry.item.mailbox_id]
                    results[index] = AppendResult(
                        mailbox_id=entry.item.mailbox_id,
                        uidvalidity=mailbox.uidvalidity,
                        uid=0,
                        message_id=existing or 0,
                        duplicate=True,
                    )
                    continue
                seen_keys.add(key)
                adopted = adoptable.get(index)
                if adopted is not None:
                    message_id, uid = adopted
                    origin_rows_adopted.append(
                        origin_row(origin, message_id, now, entry.item.flags)
                    )
                    results[index] = AppendResult(
                        mailbox_id=entry.item.mailbox_id,
                        uidvalidity=mailboxes[entry.item.mailbox_id].uidvalidity,
                        uid=uid,
                        message_id=message_id,
                        duplicate=True,
                        adopted=True,
                    )
                    continue
            fresh.append(index)
        self.database.insert_rows(session.connection(), ORIGINS, origin_rows_adopted)
        if not fresh:
            return [r for r in results if r is not None], {}

        message_rows: list[dict[str, object]] = []
        text_rows: list[dict[str, object]] = []
        for index in fresh:
            entry = prepared[index]
            row, text_row = self._message_rows(mailboxes[entry.item.mailbox_id].user_id, entry, now)
            message_rows.append(row)
            text_rows.append(text_row)
        connection = session.connection()
        if len(message_rows) == 1 or self.database.is_sqlite:
            # A bare cursor, no ORM statement machinery: on SQLite a statement per row is
            # cheaper than SQLAlchemy's batched RETURNING; PostgreSQL keeps the round trips few.
            message_ids = self.database.insert_returning_ids(connection, MESSAGES, message_rows)
        else:
            message_ids = [
                int(message_id)
                for message_id in session.scalars(
                    insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True),
                    message_rows,
                )
                if message_id is not None
            ]

        by_mailbox: dict[int, list[int]] = defaultdict(list)
        for position, index in enumerate(fresh):
            by_mailbox[prepared[index].item.mailbox_id].append(position)
        entry_rows: list[dict[str, object]] = []
        change_rows: list[dict[str, object]] = []
        origin_rows: list[dict[str, object]] = []
        changed: dict[int, tuple[int, int]] = {}
        for mailbox_id, positions in by_mailbox.items():
            first_uid, modseq = self._bump_mailbox(session, mailbox_id, len(positions))
            mailbox = mailboxes[mailbox_id]
            changed[mailbox_id] = (mailbox.user_id, modseq)
            for offset, position in enumerate(positions):
                index = fresh[position]
                item = prepared[index].item
                uid = first_uid + offset
                bits, keywords = split_flags(item.flags)
                keyword_text = encode_keywords(keywords)
                message_id = message_ids[position]
                entry_values, change_values = appended_rows(
                    mailbox_id=mailbox_id,
                    uid=uid,
                    message_id=message_id,
                    flags=bits,
                    keywords=keyword_text,
                    modseq=modseq,
                    actor=actor,
                    now=now,
                )
                entry_rows.append(entry_values)
                change_rows.append(change_values)
                if item.origin is not None:
                    origin_rows.append(origin_row(item.origin, message_id, now, item.flags))
                results[index] = AppendResult(
                    mailbox_id=mailbox_id,
                    uidvalidity=mailbox.uidvalidity,
                    uid=uid,
                    message_id=message_id,
                )
        for text_row, message_id in zip(text_rows, message_ids, strict=True):
            text_row["message_id"] = message_id
        self.database.insert_rows(connection, MESSAGE_TEXTS, text_rows)
        self.database.insert_rows(connection, MAILBOX_ENTRIES, entry_rows)
        self.database.insert_rows(connection, CHANGES, change_rows)
        self.database.insert_rows(connection, ORIGINS, origin_rows)
        return [r for r in results if r is not None], changed

    def _mailbox_keys(self, session: Session, mailbox_ids: set[int]) -> dict[int, _MailboxKey]:
        if len(mailbox_ids) == 1:  # an APPEND: a bare cursor, no ORM statement machinery
            (mailbox_id,) = mailbox_ids
            query = self.database.raw_query(_MAILBOX_KEY)
            rows = query.run(session.connection(), {"id": mailbox_id})
        else:
            rows = list(session.execute(_MAILBOX_KEYS, {"ids": sorted(mailbox_ids)}))
        return {row[0]: _MailboxKey(*row) for row in rows}

    @staticmethod
    def _message_rows(
        user_id: int, entry: _Prepared, now: datetime
    ) -> tuple[dict[str, object], dict[str, object]]:
        """The `messages` row and the `message_texts` row (without its message id yet)."""
        assert entry.blob.digest is not None  # noqa: S101
        row = {
            **entry.columns,
            "user_id": user_id,
            "blob_hash": entry.blob.digest,
            "size": entry.blob.size,
            "internal_date": entry.item.internal_date or now,
        }
        from gateway.ingest_worker import TEXT_COLUMNS

        return row, {name: row.pop(name) for name in TEXT_COLUMNS}


# The mailbox columns an append needs, without loading ORM objects (Core, built once).
_MAILBOX_KEY_COLUMNS = core_select(MAILBOXES.c.id, MAILBOXES.c.user_id, MAILBOXES.c.uidvalidity)
_MAILBOX_KEYS = _MAILBOX_KEY_COLUMNS.where(MAILBOXES.c.id.in_(bindparam("ids", expanding=True)))
_MAILBOX_KEY = _MAILBOX_KEY_COLUMNS.where(MAILBOXES.c.id == bindparam("id"))


class _MailboxKey(NamedTuple):
    id: int
    user_id: int
    uidvalidity: int


def origin_row(
    origin: OriginKey, message_id: int, now: datetime, flags: Sequence[str]
) -> dict[str, object]:
    # The flags the message arrived with are what both sides agree on at this point.
    bits, keywords = split_flags(flags)
    return {
        "synced_flags": bits,
        "synced_keywords": encode_keywords(keywords),
        "source_id": origin.source_id,
        "message_id": message_id,
        "remote_folder": origin.remote_folder,
        "uidvalidity": origin.uidvalidity,
        "remote_uid": origin.remote_uid,
        "uidl": origin.uidl,
        "content_hash": origin.content_hash,
        "fetched_at": now,
    }


def _adoptable(
    session: Session, prepared: list[_Prepared], user_ids: set[int]
) -> dict[int, tuple[int, int]]:
    """Index in `prepared` → (message id, UID) of the entry that message may join instead of
    being copied (see `NewMessage.adopt`), in two queries per batch, not one per message."""
    by_content: dict[tuple[int, str], list[int]] = defaultdict(list)
    by_message_id: dict[tuple[int, str], list[int]] = defaultdict(list)
    for index, entry in enumerate(prepared):
        item = entry.item
        if item.origin is None or item.adopt is None:
            continue
        if item.adopt == "content" and entry.blob.digest:
            by_content[(item.mailbox_id, entry.blob.digest)].append(index)
        header = entry.columns.get("message_id_header")
        if item.adopt == "message-id" and isinstance(header, str) and header:
            by_message_id[(item.mailbox_id, header)].append(index)
    found: dict[int, tuple[int, int]] = {}
    entries = MAILBOX_ENTRIES.c
    for wanted, column in (
        (by_content, MESSAGES.c.blob_hash),
        (by_message_id, MESSAGES.c.message_id_header),
    ):
        if not wanted:
            continue
        # Two indexed lookups (the content's messages, then their entries here) rather than a
        # join the planner may drive from the mailbox side, scanning every entry it holds.
        candidates = dict(
            session.execute(
                core_select(MESSAGES.c.id, column)
                .where(MESSAGES.c.user_id.in_(user_ids))
                .where(column.in_({value for _, value in wanted}))
            ).all()
        )
        if not candidates:
            continue
        rows = [
            (message_id, uid, mailbox_id, candidates[message_id])
            for message_id, uid, mailbox_id in session.execute(
                core_select(entries.message_id, entries.uid, entries.mailbox_id)
                .where(entries.message_id.in_(candidates))
                .where(entries.mailbox_id.in_({mailbox for mailbox, _ in wanted}))
                .order_by(entries.uid)
            )
        ]
        excluded = (
            _same_source(session, wanted, rows, prepared) if wanted is by_message_id else set()
        )
        for message_id, uid, mailbox_id, value in rows:
            for index in wanted.get((mailbox_id, value), ()):
                if index not in found and (index, message_id) not in excluded:
                    found[index] = (message_id, uid)
    return found


def _same_source(
    session: Session,
    wanted: dict[tuple[int, str], list[int]],
    rows: Sequence[tuple[int, int, int, str]],
    prepared: list[_Prepared],
) -> set[tuple[int, int]]:
    """(index, message id) pairs where the candidate came through the item's own source:
    two messages sharing a Message-ID in one account are that account's business."""
    candidates = {row[0] for row in rows}
    if not candidates:
        return set()
    sources_of: dict[int, set[int]] = defaultdict(set)
    for message_id, source_id in session.execute(
        core_select(ORIGINS.c.message_id, ORIGINS.c.source_id).where(
            ORIGINS.c.message_id.in_(candidates)
        )
    ):
        sources_of[message_id].add(source_id)
    excluded: set[tuple[int, int]] = set()
    for message_id, _uid, mailbox_id, value in rows:
        for index in wanted.get((mailbox_id, value), ()):
            origin = prepared[index].item.origin
            if origin is not None and origin.source_id in sources_of[message_id]:
                excluded.add((index, message_id))
    return excluded


def find_origins(session: Session, origins: Iterable[OriginKey]) -> dict[tuple[object, ...], int]:
    """Which of `origins` are already stored: dedupe key → message id (0 if since deleted).

    One query per source and remote folder, not one per message.
    """
    by_uidl: dict[int, set[str]] = defaultdict(set)
    by_folder: dict[tuple[int, str | None, int | None], set[int]] = defaultdict(set)
    for origin in origins:
        if origin.uidl is not None:
            by_uidl[origin.source_id].add(origin.uidl)
        elif origin.remote_uid is not None:
            by_folder[origin.source_id, origin.remote_folder, origin.uidvalidity].add(
                origin.remote_uid
            )
    found: dict[tuple[object, ...], int] = {}
    for source_id, uidls in by_uidl.items():
        uidl_rows = session.exec(
            select(Origin.uidl, Origin.message_id).where(
                Origin.source_id == source_id, col(Origin.uidl).in_(uidls)
            )
        )
        for uidl, message_id in uidl_rows:
            found[OriginKey(source_id, uidl=uidl).dedupe_key()] = message_id or 0
    for (source_id, folder, uidvalidity), uids in by_folder.items():
        uid_rows = session.exec(
            select(Origin.remote_uid, Origin.message_id).where(
                Origin.source_id == source_id,
                Origin.remote_folder == folder,
                Origin.uidvalidity == uidvalidity,
                col(Origin.remote_uid).in_(uids),
            )
        )
        for remote_uid, message_id in uid_rows:
            key = OriginKey(source_id, folder, uidvalidity, remote_uid).dedupe_key()
            found[key] = message_id or 0
    return found
