"""Reads behind IMAP SEARCH: the searchable fields of many messages, in bulk.

SEARCH evaluates flag, UID and sequence keys from the session's entries first, so these reads
only ever see the messages that can still match: one query per 500 ids, loading only the
columns a key needs. Substring matching stays in Python (`gateway.imap.search`): its Unicode
folding (decomposition, then case) has no equivalent in SQL on both backends, and measured on
10,000 messages (~60 KB each) SQL-side filtering of the body text was slower than reading it
(SQLite instr(lower(...)) 0.60 s vs 0.26 s to read; PostgreSQL strpos(lower(...)) 2.5 s vs
1.0 s).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, BinaryIO, Literal, NamedTuple, get_args

from sqlalchemy import FromClause, select

from gateway.store.base import StoreBase, chunked_ids
from gateway.store.errors import NotFoundError
from gateway.store.tables import MESSAGE_TEXTS, MESSAGES

if TYPE_CHECKING:
    from gateway.mime.part_data import PartData

SearchField = Literal[
    "size",
    "internal_date",
    "sent_date",
    "subject",
    "from_addr",
    "to_addr",
    "cc_addr",
    "bcc_addr",
    "header_text",
    "body_text",
    "body_text_truncated",
]
SEARCH_FIELDS: tuple[SearchField, ...] = get_args(SearchField)
_TEXT_FIELDS = frozenset(name for name in SEARCH_FIELDS if name in MESSAGE_TEXTS.c)
_COLUMNS = {
    name: (MESSAGE_TEXTS if name in _TEXT_FIELDS else MESSAGES).c[name] for name in SEARCH_FIELDS
}
_READ_CHUNK = 256 * 1024


class SearchFields(NamedTuple):
    """The requested searchable columns of one message; fields not requested stay None.

    A named tuple: SEARCH builds one per message per query, and a tuple is built fastest.
    """

    size: int | None = None
    internal_date: datetime | None = None
    sent_date: datetime | None = None
    subject: str | None = None
    from_addr: str | None = None
    to_addr: str | None = None
    cc_addr: str | None = None
    bcc_addr: str | None = None
    header_text: str | None = None
    body_text: str | None = None
    body_text_truncated: bool | None = None


class SearchDataOperations(StoreBase):
    def search_message_fields(
        self, *, message_ids: Collection[int], fields: Collection[SearchField]
    ) -> dict[int, SearchFields]:
        """The `fields` of every message in `message_ids`, one query per 500 ids.

        Unknown ids are left out of the result (the message was expunged meanwhile).
        """
        result: dict[int, SearchFields] = {}
        for chunk in self.iter_message_fields(message_ids=message_ids, fields=fields):
            result.update(chunk)
        return result

    def iter_message_fields(
        self, *, message_ids: Collection[int], fields: Collection[SearchField]
    ) -> Iterator[dict[int, SearchFields]]:
        """Like `search_message_fields`, one dict per query, so that large text columns
        (body_text: up to 128 KiB a message) never pile up for a whole mailbox."""
        wanted = set(fields)
        names = [name for name in SEARCH_FIELDS if name in wanted]
        if not names:
            raise ValueError("no search field requested")
        columns = [MESSAGES.c.id, *(_COLUMNS[name] for name in names)]
        source: FromClause = MESSAGES
        if wanted & _TEXT_FIELDS:
            source = MESSAGES.join(MESSAGE_TEXTS, MESSAGE_TEXTS.c.message_id == MESSAGES.c.id)
        # Builds a whole SearchFields from (id, *columns, None) in C: a named tuple per row
        # is the cheapest view when a SUBJECT search reads 10,000 rows.
        missing = len(names) + 1
        pick = itemgetter(
            *(names.index(name) + 1 if name in wanted else missing for name in SEARCH_FIELDS)
        )
        make = SearchFields._make
        with self.database.read() as session:
            for chunk in chunked_ids(sorted(set(message_ids))):
                low, high = chunk[0], chunk[-1]
                if high - low < 2 * len(chunk):
                    # Dense ids (a mailbox ingested in batches): a range scan binds two
                    # values instead of 500.
                    condition = MESSAGES.c.id.between(low, high)
                else:
                    condition = MESSAGES.c.id.in_(chunk)
                rows = session.execute(select(*columns).select_from(source).where(condition)).all()
                members = set(chunk)
                yield {row[0]: make(pick((*row, None))) for row in rows if row[0] in members}

    def read_body_texts(self, *, message_id: int) -> Iterator[str]:
        """The whole decoded text of each text part, read from the blob, part by part.

        For BODY/TEXT on a message whose stored body_text was cut at 128 KiB. Part
        boundaries come from the stored part offsets; the decoding (transfer encoding,
        charset) is the one ingest used for body_text, without its cap.
        """
        # Not imported with the store: most `gateway` commands never decode a message.
        from gateway.ingest_worker import storable_text
        from gateway.mime import parts_from_json
        from gateway.mime.text_decode import TextCollector

        with self.database.read() as session:
            row = session.execute(
                select(MESSAGES.c.blob_hash, MESSAGES.c.parts_json).where(
                    MESSAGES.c.id == message_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no such message: {message_id}")
        blob_hash, parts_json = row
        spans = [span for span in parts_from_json(parts_json) if span.section]
        # A leaf whose header starts a message (the top one or an embedded message/rfc822)
        # is MIME only if it says so; a body part of a multipart always is (RFC 2045 §4).
        message_starts = {0} | {span.body_start for span in spans if span.is_message}
        with self.blobs.open(blob_hash) as blob:
            for span in spans:
                if span.is_multipart or span.is_message:
                    continue
                if not span.content_type.startswith("text/"):
                    continue
                blob.seek(span.header_start)
                header = blob.read(max(span.body_start - span.header_start, 0))
                data = _part_data(header, in_multipart=span.header_start not in message_starts)
                collector = TextCollector(
                    data.content_transfer_encoding, data.charset(), span.end - span.body_start
                )
                blob.seek(span.body_start)
                for lines in _whole_lines(blob, span.end - span.body_start):
                    collector.feed(lines)
                # As stored in body_text, so that SEARCH answers the same either way.
                text = storable_text(collector.finish())
                if text:
                    yield text


def _whole_lines(blob: BinaryIO, size: int) -> Iterator[bytes]:
    """`size` bytes from the blob in large pieces that end at a line end (but the last).

    TextCollector decodes a piece that starts a line in one run, but one that continues a
    line line by line, which is many times slower.
    """
    carry = b""
    remaining = size
    while remaining > 0:
        piece = blob.read(min(_READ_CHUNK, remaining))
        if not piece:
            break
        remaining -= len(piece)
        piece = carry + piece
        cut = piece.rfind(b"\n") + 1
        if cut == 0 and len(piece) < _READ_CHUNK * 4:
            carry = piece  # an over-long line: keep reading, up to a bound
            continue
        if cut == 0:
            cut = len(piece)
        carry = piece[cut:]
        yield piece[:cut]
    if carry:
        yield carry


def _part_data(header: bytes, *, in_multipart: bool) -> PartData:
    """Content-* fields of a part, ignored (RFC 2045 §4) unless the part is MIME."""
    from gateway.mime.header_fields import split_header_fields
    from gateway.mime.part_data import PartData

    fields = split_header_fields(header.rstrip(b"\r\n"))
    is_mime = in_multipart or any(
        name.lower() in (b"mime-version", b"content-type") for name, _ in fields
    )
    data = PartData()
    if is_mime:
        for name, value in fields:
            if name.lower().startswith(b"content-"):
                data.apply_header(name, value)
    return data
