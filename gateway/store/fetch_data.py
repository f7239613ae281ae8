"""Reads behind IMAP FETCH: only the precomputed columns a FETCH asks for, in bulk.

A FETCH over a whole mailbox must never load the search columns (`header_text`,
`body_text`): they are the heaviest part of a row and FETCH never needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, BinaryIO, Literal, NamedTuple

from sqlalchemy import Select, bindparam, select

from gateway.store.base import StoreBase, chunked_ids
from gateway.store.tables import MAILBOX_ENTRIES, MESSAGES

FetchColumn = Literal[
    "blob_hash", "size", "internal_date", "envelope", "bodystructure", "body", "parts_json"
]

# Every column `fetch_message_data` may load, in `FetchData` field order.
FETCH_COLUMNS: tuple[FetchColumn, ...] = (
    "blob_hash",
    "size",
    "internal_date",
    "envelope",
    "bodystructure",
    "body",
    "parts_json",
)
_MODEL_COLUMNS: dict[FetchColumn, Any] = {name: MESSAGES.c[name] for name in FETCH_COLUMNS}


class FetchData(NamedTuple):
    """The FETCH columns of one message; a column that was not asked for is None.

    A NamedTuple, not a dataclass: a FETCH of a whole mailbox builds ten thousand of these.
    """

    message_id: int
    blob_hash: str | None = None
    size: int | None = None
    internal_date: datetime | None = None
    envelope: bytes | None = None
    bodystructure: bytes | None = None
    body: bytes | None = None
    parts_json: str | None = None


def _row_builder(wanted: list[FetchColumn]) -> Callable[[Sequence[Any]], FetchData]:
    """Turns a result row (id, then `wanted` columns) into FetchData without keyword arguments."""
    positions = [FETCH_COLUMNS.index(name) for name in wanted]
    if positions == list(range(len(FETCH_COLUMNS))):
        return FetchData._make

    def build(row: Sequence[Any]) -> FetchData:
        values: list[Any] = [None] * len(FETCH_COLUMNS)
        for offset, position in enumerate(positions, 1):
            values[position] = row[offset]
        return FetchData(row[0], *values)

    return build


@functools.cache
def _by_ids_statement(
    wanted: tuple[FetchColumn, ...],
) -> tuple[Select[Any], Callable[[Sequence[Any]], FetchData]]:
    statement = select(MESSAGES.c.id, *(_MODEL_COLUMNS[name] for name in wanted)).where(
        MESSAGES.c.id.in_(bindparam("ids", expanding=True))
    )
    return statement, _row_builder(list(wanted))


@functools.cache
def _by_id_statement(columns: tuple[FetchColumn, ...]) -> Select[Any]:
    return select(MESSAGES.c.id, *(_MODEL_COLUMNS[name] for name in columns)).where(
        MESSAGES.c.id == bindparam("id")
    )


@functools.cache
def _by_uid_statement(columns: tuple[FetchColumn, ...]) -> Select[Any]:
    return (
        select(MESSAGES.c.id, *(_MODEL_COLUMNS[name] for name in columns))
        .select_from(MAILBOX_ENTRIES.join(MESSAGES, MESSAGES.c.id == MAILBOX_ENTRIES.c.message_id))
        .where(
            MAILBOX_ENTRIES.c.mailbox_id == bindparam("mailbox_id"),
            MAILBOX_ENTRIES.c.uid >= bindparam("first_uid"),
            MAILBOX_ENTRIES.c.uid <= bindparam("last_uid"),
        )
        .order_by(MAILBOX_ENTRIES.c.uid)
    )


class FetchDataOperations(StoreBase):
    def fetch_message_data(
        self, *, message_ids: Collection[int], columns: Collection[FetchColumn]
    ) -> dict[int, FetchData]:
        """`columns` of many messages, one query per 500 ids; messages gone are left out."""
        wanted = [name for name in FETCH_COLUMNS if name in columns]
        unknown = set(columns) - set(FETCH_COLUMNS)
        if unknown:
            raise ValueError(f"not a FETCH column: {sorted(unknown)}")
        if len(message_ids) == 1:
            # One message (a client opening a mail): a compiled statement on a bare cursor.
            (message_id,) = message_ids
            query = self.database.raw_query(_by_id_statement(tuple(wanted)))
            with self.database.raw_read() as connection:
                rows = query.run(connection, {"id": message_id})
            build_one = _row_builder(wanted)
            return {row[0]: build_one(row) for row in rows}
        statement, build = _by_ids_statement(tuple(wanted))
        result: dict[int, FetchData] = {}
        # A plain Core connection and a statement built once: for a one-message FETCH the
        # ORM and statement construction would cost more than the query itself.
        with self.database.single_read() as connection:
            for chunk in chunked_ids(sorted(set(message_ids))):
                for row in connection.execute(statement, {"ids": chunk}):
                    result[row[0]] = build(row)
        return result

    def fetch_message_rows_by_uid(
        self,
        *,
        mailbox_id: int,
        first_uid: int,
        last_uid: int,
        columns: tuple[FetchColumn, ...],
    ) -> list[tuple[Any, ...]]:
        """Rows `(message id, *columns)` of a mailbox's UID range in UID order, as plain tuples.

        One range scan of the (mailbox, UID) index on a bare cursor: `FETCH 1:* (ENVELOPE)`
        reads ten thousand rows, and per-row result objects would cost more than SQLite.
        """
        query = self.database.raw_query(_by_uid_statement(columns))
        params = {"mailbox_id": mailbox_id, "first_uid": first_uid, "last_uid": last_uid}
        with self.database.raw_read() as connection:
            return query.run(connection, params)

    def open_blob(self, *, blob_hash: str) -> BinaryIO:
        """The raw bytes of a message by its blob hash (from `fetch_message_data`), for ranged
        reads: BODY[2] of a 25 MB message reads only part 2."""
        return self.blobs.open(blob_hash)

    def read_blob_if_cached(self, *, blob_hash: str, limit: int) -> bytes | None:
        """A message's raw bytes if that cannot block (`BlobStore.read_if_cached`): the one
        store call the IMAP event loop may make itself."""
        return self.blobs.read_if_cached(blob_hash, limit)
