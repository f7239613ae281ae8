"""The search indexer's store side: body text decoded after fetched mail is stored.

Decoding the body text for SEARCH (transfer encodings, charsets) is a fifth of a message's
analysis, and the text is most of a row's bytes. Fetchers store mail without it
(`defer_search_text`), so that a first sync of a large mailbox is not paced by it; such rows
have `search_pending` set, an empty `body_text` and `body_text_truncated` set, so SEARCH reads
their blobs meanwhile and answers the same. `index_search_text` fills the text in later,
batch by batch, in the ingest worker processes (`gateway/search_indexer.py` drives it).
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sqlalchemy import bindparam, select, update

from gateway.ingest_worker import search_text_of
from gateway.store.base import StoreBase, log
from gateway.store.tables import MESSAGES

INDEX_BATCH = 200
# Fewer messages than this are decoded in this process: a worker round trip costs more.
_POOL_MIN = 8

_PENDING = (
    select(MESSAGES.c.id, MESSAGES.c.blob_hash)
    .where(MESSAGES.c.search_pending)
    .order_by(MESSAGES.c.id)
    .limit(bindparam("limit"))
)
_COUNT_PENDING = select(MESSAGES.c.id).where(MESSAGES.c.search_pending)
_FILL = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("message_id"), MESSAGES.c.search_pending)
    .values(
        body_text=bindparam("text"),
        body_text_truncated=bindparam("truncated"),
        search_pending=False,
    )
)


class SearchIndexOperations(StoreBase):
    def count_pending_search_text(self) -> int:
        """How many stored messages still wait for their search text."""
        with self.database.single_read() as connection:
            return len(connection.execute(_COUNT_PENDING).all())

    def index_search_text(self, *, limit: int = INDEX_BATCH) -> int:
        """Decode and store the search text of up to `limit` waiting messages (oldest first);
        returns how many were waiting, 0 when none is left."""
        with self.database.single_read() as connection:
            rows = connection.execute(_PENDING, {"limit": limit}).all()
        if not rows:
            return 0
        paths = [self.blobs.path_for(blob_hash) for _, blob_hash in rows]
        texts = self._decode(paths)
        values = []
        for (message_id, _blob_hash), decoded in zip(rows, texts, strict=True):
            if decoded is None:
                # The blob is gone (only a damaged store loses one): SEARCH finds nothing
                # in it either way; stop retrying.
                log.error("event=search_index_blob_missing message_id=%d", message_id)
                decoded = ("", True)
            values.append({"message_id": message_id, "text": decoded[0], "truncated": decoded[1]})
        with self.database.write() as session:
            session.connection().execute(_FILL, values)
        return len(rows)

    def _decode(self, paths: list[Path]) -> list[tuple[str, bool] | None]:
        pool = self._analysis_pool() if len(paths) >= _POOL_MIN else None
        if pool is not None:
            try:
                return list(pool.map(search_text_of, paths, chunksize=max(1, len(paths) // 8)))
            except BrokenProcessPool:
                log.warning("event=ingest_workers_broken action=restart")
                self.shutdown_workers()
        return [search_text_of(path) for path in paths]
