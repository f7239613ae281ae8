"""A client opening a message (`FETCH n BODY.PEEK[]`), answered on the event loop when it can be.

Such a FETCH would otherwise hop to the thread pool for a one-row query and a file read, and
on a small VM the hop (two thread wake-ups and GIL hand-offs) costs more than all the rest of
the command. The loop may not wait for the disk or the database (DESIGN invariant 5), so this
path uses neither: the selected view knows each message's blob (`SelectedMailbox.blob_hash`),
and the blob is read only if it is wholly in memory (`BlobStore.read_if_cached`). If any of
that fails, nothing has been sent and the caller renders the ordinary way.

The response comes from `render_fetch` itself, fed from memory, so it is byte for byte what
the thread path sends.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import BinaryIO, Protocol

from gateway.imap.fetch_render import render_fetch
from gateway.imap.protocol.fetch_items import FetchAttribute
from gateway.store.fetch_data import FetchColumn, FetchData
from gateway.store.views import EntryInfo

# At most this many messages, and this many bytes in all, are read on the loop per command:
# copying a megabyte takes well under a millisecond; beyond that the thread pool is fairer.
MAX_MESSAGES = 8
MAX_BYTES = 1 << 20
# Items answered from the blob alone (a whole-message section) or from the view.
_ENTRY_ITEMS = frozenset({"UID", "FLAGS", "MODSEQ"})
_WHOLE_MESSAGE_ITEMS = frozenset({"BODY[]", "RFC822"})


class CachedBlobs(Protocol):
    def read_blob_if_cached(self, *, blob_hash: str, limit: int) -> bytes | None: ...


class BlobLocator(Protocol):
    def blob_hash(self, message_id: int) -> str | None: ...


def loop_fetchable(attributes: Sequence[FetchAttribute]) -> bool:
    """Whether the items need nothing but whole messages and the view: BODY[] or RFC822 (any
    partial), RFC822.SIZE, UID, FLAGS, MODSEQ."""
    whole = False
    for attribute in attributes:
        name = attribute.name
        if name in _WHOLE_MESSAGE_ITEMS:
            section = attribute.section
            if section is not None and (section.part or section.text is not None):
                return False
            whole = True
        elif name not in _ENTRY_ITEMS and name != "RFC822.SIZE":
            return False
    return whole


def render_on_loop(
    store: CachedBlobs,
    view: BlobLocator,
    *,
    targets: Sequence[tuple[int, EntryInfo]],
    attributes: Sequence[FetchAttribute],
    recent_uids: AbstractSet[int],
) -> bytes | None:
    """The whole FETCH response if every message could be read without blocking, else None."""
    if not targets or len(targets) > MAX_MESSAGES or not loop_fetchable(attributes):
        return None
    contents: dict[int, tuple[str, bytes]] = {}
    budget = MAX_BYTES
    for _, entry in targets:
        blob_hash = view.blob_hash(entry.message_id)
        if blob_hash is None:
            return None
        data = store.read_blob_if_cached(blob_hash=blob_hash, limit=budget)
        if data is None:
            return None
        budget -= len(data)
        contents[entry.message_id] = (blob_hash, data)
    chunks = render_fetch(
        _InMemory(contents), targets=targets, attributes=attributes, recent_uids=recent_uids
    )
    return b"".join(chunks)


class _InMemory:
    """`FetchSource` over messages already read: whole-message sections need no parts."""

    def __init__(self, contents: dict[int, tuple[str, bytes]]) -> None:
        self._contents = contents
        self._by_hash = {blob_hash: data for blob_hash, data in contents.values()}

    def fetch_message_data(
        self, *, message_ids: Sequence[int], columns: AbstractSet[FetchColumn]
    ) -> dict[int, FetchData]:
        return {
            message_id: FetchData(message_id, blob_hash=blob_hash, size=len(data), parts_json="[]")
            for message_id in message_ids
            for blob_hash, data in (self._contents[message_id],)
        }

    def open_blob(self, *, blob_hash: str) -> BinaryIO:
        return io.BytesIO(self._by_hash[blob_hash])
