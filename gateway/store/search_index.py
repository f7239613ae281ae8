"""The search indexer's store side: body text decoded after fetched mail is stored.

Decoding the body text for SEARCH (transfer encodings, charsets) is a fifth of a message's
analysis, and the text is most of a row's bytes. Fetchers store mail without it
(`defer_search_text`), so that a first sync of a large mailbox is not paced by it; such rows
have `search_pending` set, an empty `body_text` and `body_text_truncated` set, so SEARCH reads
their blobs meanwhile and answers the same. `index_search_text` fills the text in later,
batch by batch, in the ingest worker processes (`gateway/search_indexer.py` drives it).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, select, update

from gateway.store.base import POOL_MIN_BATCH, StoreBase, log
from gateway.store.tables import MESSAGE_TEXTS, MESSAGES

INDEX_BATCH = 200

_PENDING = (
    select(MESSAGES.c.id, MESSAGES.c.blob_hash)
    .where(MESSAGES.c.search_pending)
    .order_by(MESSAGES.c.id)
    .limit(bindparam("limit"))
)
_CLAIM_PENDING = _PENDING.with_for_update(skip_locked=True)
_COUNT_PENDING = select(func.count()).select_from(MESSAGES).where(MESSAGES.c.search_pending)
# The blob hash too: SQLite hands a deleted row's id to the next insert, and the text decoded
# for an expunged message must never land on another (perhaps another user's) message.
_STILL_PENDING = (
    MESSAGES.c.id == bindparam("indexed_id"),
    MESSAGES.c.blob_hash == bindparam("stored_blob"),
    MESSAGES.c.search_pending,
)
# Text first (while the message still counts as pending), then the mark.
_FILL_TEXT = (
    update(MESSAGE_TEXTS)
    .where(
        MESSAGE_TEXTS.c.message_id == bindparam("indexed_id"),
        exists().where(*_STILL_PENDING),
    )
    .values(body_text=bindparam("text"), body_text_truncated=bindparam("truncated"))
)
_MARK_DONE = update(MESSAGES).where(*_STILL_PENDING).values(search_pending=False)


class SearchIndexOperations(StoreBase):
    def count_pending_search_text(self) -> int:
        """How many stored messages still wait for their search text."""
        with self.database.single_read() as connection:
            return int(connection.execute(_COUNT_PENDING).scalar_one())

    def index_all_search_text(self) -> int:
        """Index batch after batch until nothing waits (or the workers died); returns how
        many messages were indexed."""
        indexed = 0
        while done := self.index_search_text():
            indexed += done
        return indexed

    def index_search_text(self, *, limit: int = INDEX_BATCH) -> int:
        """Decode and store the search text of up to `limit` waiting messages (oldest first);
        returns how many were handled, 0 when none is left (or the workers just died)."""
        if self.database.is_sqlite:
            # One process writes a SQLite store: no claim needed, and none wanted, since a
            # write transaction held while decoding would stall every other writer.
            with self.database.single_read() as connection:
                rows = connection.execute(_PENDING, {"limit": limit}).all()
            values = self._decoded_values(rows)
            if values:
                with self.database.write() as session:
                    _fill(session.connection(), values)
            return len(values)
        # PostgreSQL replicas share the store: each claims its batch (row locks held until
        # the fill commits), so that two never decode the same messages.
        with self.database.write() as session:
            rows = session.execute(_CLAIM_PENDING, {"limit": limit}).all()
            values = self._decoded_values(rows)
            if values:
                _fill(session.connection(), values)
        return len(values)

    def _decoded_values(self, rows: Sequence[Any]) -> list[dict[str, object]]:
        if not rows:
            return []
        texts = self._decode([self.blobs.path_for(blob_hash) for _, blob_hash in rows])
        if texts is None:
            return []
        values: list[dict[str, object]] = []
        for (message_id, blob_hash), decoded in zip(rows, texts, strict=True):
            if isinstance(decoded, str):
                # Unreadable (the blob is gone with an expunged message, or damaged): SEARCH
                # keeps reading the blob for it, so answers stay right; stop retrying.
                log.warning(
                    "event=search_index_skipped message_id=%d reason=%s", message_id, decoded
                )
                decoded = ("", True)
            values.append(
                {
                    "indexed_id": message_id,
                    "stored_blob": blob_hash,
                    "text": decoded[0],
                    "truncated": decoded[1],
                }
            )
        return values

    def _decode(self, paths: list[Path]) -> list[tuple[str, bool] | str] | None:
        from gateway.ingest_worker import search_text_of  # not at import: see store/ingest.py

        pool = self._analysis_pool() if len(paths) >= POOL_MIN_BATCH else None
        if pool is None:
            return [search_text_of(path) for path in paths]
        try:
            return list(pool.map(search_text_of, paths, chunksize=max(1, len(paths) // 8)))
        except BrokenProcessPool:
            # Not decoded here instead: up to 200 large messages would hold this process's
            # GIL against the event loop.
            self._drop_broken_pool()
            return None


def _fill(connection: Connection, values: list[dict[str, Any]]) -> None:
    connection.execute(_FILL_TEXT, values)
    connection.execute(_MARK_DONE, values)
