"""FETCH responses (RFC 3501 §7.4.2) for many messages, rendered in chunks of bytes.

Synchronous on purpose: the server runs `render_fetch` in a worker thread and writes each
chunk before asking for the next, so a FETCH of a large mailbox never holds more than about
`batch_bytes` of responses (plus one message) in memory.

`UID`, `FLAGS` and `MODSEQ` come from the session's entries alone: `UID FETCH 1:* (UID FLAGS)`
over a whole mailbox touches no database at all. Anything else loads only the columns it
needs, one query per 500 messages, and reads the blob only for body sections, only the byte
ranges asked for.

Setting `\\Seen` for a non-PEEK body fetch (RFC 3501 §6.4.5) is the caller's job: it knows the
session and must store the flag before rendering, so that FLAGS shows it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol, cast

from gateway.imap.body_sections import MessageParts, fetch_section
from gateway.imap.protocol import responses
from gateway.imap.protocol.fetch_items import FetchAttribute, Section
from gateway.mime.model import parts_from_json
from gateway.store.fetch_data import FETCH_COLUMNS, FetchColumn, FetchData
from gateway.store.flags import SYSTEM_FLAG_BITS
from gateway.store.views import EntryInfo

# One store query loads the data of at most this many messages.
LOAD_BATCH = 500


class FetchSource(Protocol):
    """The store operations a FETCH needs (MailStore provides them)."""

    def fetch_message_data(
        self, *, message_ids: Sequence[int], columns: AbstractSet[FetchColumn]
    ) -> dict[int, FetchData]: ...

    def open_blob(self, *, blob_hash: str) -> BinaryIO: ...


class UidRanges(Protocol):
    """Rows `(message id, *columns)` of one mailbox's UID range, in UID order: the selected
    mailbox's `MailStore.fetch_message_rows_by_uid`."""

    def __call__(
        self, *, first_uid: int, last_uid: int, columns: tuple[FetchColumn, ...]
    ) -> list[tuple[Any, ...]]: ...


class _Message:
    """One message while it is rendered: its loaded columns, its parts, its blob on demand."""

    __slots__ = ("_file", "_parts", "_source", "data")

    def __init__(self, source: FetchSource, data: FetchData) -> None:
        self._source = source
        self.data = data
        self._file: BinaryIO | None = None
        self._parts: MessageParts | None = None

    def parts(self) -> MessageParts:
        if self._parts is None:
            spans = parts_from_json(self.data.parts_json or "[]")
            self._parts = MessageParts(spans, self.data.size or 0)
        return self._parts

    def read_range(self, start: int, end: int) -> bytes:
        if self._file is None:
            if self.data.blob_hash is None:
                raise ValueError("blob_hash was not loaded")
            self._file = self._source.open_blob(blob_hash=self.data.blob_hash)
        self._file.seek(start)
        return self._file.read(end - start)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# Appends one FETCH item (name and value) to `out`; the message is None when no column is needed.
_Render = Callable[[list[bytes], EntryInfo, "_Message | None"], None]


def render_fetch(
    store: FetchSource,
    *,
    targets: Sequence[tuple[int, EntryInfo]],
    attributes: Sequence[FetchAttribute],
    recent_uids: AbstractSet[int] = frozenset(),
    batch_bytes: int = 1 << 20,
    on_expunged: Callable[[int], None] | None = None,
    uid_ranges: UidRanges | None = None,
) -> Iterator[bytes]:
    """`* <seq> FETCH (...)\\r\\n` for each (sequence number, entry), in chunks of about
    `batch_bytes` (a single larger response is a chunk of its own).

    A message whose content is gone (expunged by another session since this one last
    synchronised) gets no response; its UID goes to `on_expunged` (RFC 2180 §4.1.2).
    """
    columns = _columns(attributes)
    if not columns:
        yield from _render_entries_only(targets, attributes, recent_uids, batch_bytes)
        return
    if columns <= _PRECOMPUTED and all(a.section is None for a in attributes):
        yield from _render_precomputed(
            store, targets, attributes, recent_uids, batch_bytes, uid_ranges, on_expunged
        )
        return
    renders = [_renderer(attribute, recent_uids) for attribute in attributes]
    pending: list[bytes] = []
    pending_size = 0
    for first in range(0, len(targets), LOAD_BATCH):
        batch = targets[first : first + LOAD_BATCH]
        loaded = store.fetch_message_data(
            message_ids=[entry.message_id for _, entry in batch], columns=columns
        )
        for sequence, entry in batch:
            message: _Message | None = None
            if columns:
                data = loaded.get(entry.message_id)
                if data is None:
                    if on_expunged is not None:
                        on_expunged(entry.uid)
                    continue
                message = _Message(store, data)
            mark = len(pending)
            pending.append(b"* %d FETCH (" % sequence)
            try:
                for index, render in enumerate(renders):
                    if index:
                        pending.append(b" ")
                    render(pending, entry, message)
            finally:
                if message is not None:
                    message.close()
            pending.append(b")\r\n")
            size = sum(map(len, pending[mark:]))
            if pending_size and pending_size + size > batch_bytes:
                # flush what came before, so a big response starts a chunk of its own
                yield b"".join(pending[:mark])
                del pending[:mark]
                pending_size = 0
            pending_size += size
            if pending_size >= batch_bytes:
                yield b"".join(pending)
                pending.clear()
                pending_size = 0
    if pending:
        yield b"".join(pending)


Row = tuple[Any, ...]


def _load_rows(
    store: FetchSource,
    batch: Sequence[tuple[int, EntryInfo]],
    columns: tuple[FetchColumn, ...],
    uid_ranges: UidRanges | None,
) -> tuple[list[Row | None], bool]:
    """`(message id, *columns)` of each message of the batch, in batch order, None for a
    message that is gone; and whether none is."""
    first_uid, last_uid = batch[0][1].uid, batch[-1][1].uid
    wanted = [entry.message_id for _, entry in batch]
    if uid_ranges is not None and len(batch) > 1 and last_uid - first_uid < 2 * len(batch):
        # A dense run of UIDs (FETCH 1:*): one index range scan instead of an IN-list.
        rows = uid_ranges(first_uid=first_uid, last_uid=last_uid, columns=columns)
        if list(map(_FIRST, rows)) == wanted:
            return rows, True  # type: ignore[return-value]  # the usual case: row k is message k
        by_id = {row[0]: row for row in rows}
    else:
        loaded = store.fetch_message_data(message_ids=wanted, columns=frozenset(columns))
        by_id = {
            message_id: (message_id, *(getattr(data, name) for name in columns))
            for message_id, data in loaded.items()
        }
    found = [by_id.get(message_id) for message_id in wanted]
    return found, None not in found


_FIRST = operator.itemgetter(0)
_PRECOMPUTED: frozenset[FetchColumn] = frozenset(
    ("size", "internal_date", "envelope", "bodystructure", "body")
)
_Getter = Callable[[EntryInfo, "Row"], object]
_PRECOMPUTED_COLUMN: dict[str, FetchColumn] = {
    "ENVELOPE": "envelope",
    "BODYSTRUCTURE": "bodystructure",
    "BODY": "body",
}


def _render_precomputed(
    store: FetchSource,
    targets: Sequence[tuple[int, EntryInfo]],
    attributes: Sequence[FetchAttribute],
    recent_uids: AbstractSet[int],
    batch_bytes: int,
    uid_ranges: UidRanges | None,
    on_expunged: Callable[[int], None] | None,
) -> Iterator[bytes]:
    """ENVELOPE, BODYSTRUCTURE, RFC822.SIZE, ... of a whole mailbox (a client's first sync):
    stored bytes pasted into one %-format per message, no per-item objects."""
    columns = tuple(name for name in FETCH_COLUMNS if name in _columns(attributes))
    position = {name: index for index, name in enumerate(columns, 1)}
    flags_of = _flags_lookup(recent_uids)
    chosen: list[tuple[bytes, _Getter]] = []
    for attribute in attributes:
        name = attribute.name
        if name == "UID":
            chosen.append((b"UID %d", lambda entry, row: entry.uid))
        elif name == "FLAGS":
            chosen.append((b"%s", lambda entry, row: flags_of(entry)))
        elif name == "MODSEQ":
            chosen.append((b"MODSEQ (%d)", lambda entry, row: entry.modseq))
        elif name == "INTERNALDATE":
            chosen.append((b"INTERNALDATE %s", _row_date(position["internal_date"])))
        elif name == "RFC822.SIZE":
            chosen.append((b"RFC822.SIZE %d", _row_value(position["size"], 0)))
        else:  # ENVELOPE, BODYSTRUCTURE, BODY: stored wire bytes
            at = position[_PRECOMPUTED_COLUMN[name]]
            chosen.append((name.encode() + b" %s", _row_value(at, b"NIL")))
    line = b"* %d FETCH (" + b" ".join(fmt for fmt, _ in chosen) + b")\r\n"
    functions = [function for _, function in chosen]

    def render(sequence: int, entry: EntryInfo, row: Row) -> bytes:
        return line % (sequence, *[function(entry, row) for function in functions])

    def render_all(batch: Sequence[tuple[int, EntryInfo]], rows: list[Row]) -> list[bytes]:
        return [
            render(sequence, entry, row) for (sequence, entry), row in zip(batch, rows, strict=True)
        ]

    render_batch = _direct_batch_renderer(attributes, position, line) or render_all

    def batches() -> Iterator[bytes]:
        for first in range(0, len(targets), LOAD_BATCH):
            batch = targets[first : first + LOAD_BATCH]
            rows, complete = _load_rows(store, batch, columns, uid_ranges)
            if complete:
                # One join per 500 responses: the whole-mailbox sync of a new device.
                yield b"".join(render_batch(batch, cast(list[Row], rows)))
                continue
            for (sequence, entry), row in zip(batch, rows, strict=True):
                if row is None:
                    if on_expunged is not None:
                        on_expunged(entry.uid)
                else:
                    yield render(sequence, entry, row)

    yield from _chunked(batches(), batch_bytes)


# Columns the schema declares NOT NULL: their values go into the response as they are.
_NOT_NULL_ITEMS: dict[str, FetchColumn] = {
    "ENVELOPE": "envelope",
    "BODYSTRUCTURE": "bodystructure",
    "BODY": "body",
    "RFC822.SIZE": "size",
}


_BatchRenderer = Callable[[Sequence[tuple[int, EntryInfo]], list[Row]], list[bytes]]


def _direct_batch_renderer(
    attributes: Sequence[FetchAttribute], position: dict[FetchColumn, int], line: bytes
) -> _BatchRenderer | None:
    """For `[UID] ENVELOPE|BODYSTRUCTURE|BODY|RFC822.SIZE ...` (a client's first sync), the
    responses of a batch in one list comprehension, values straight from the rows: no call
    per message."""
    names = [attribute.name for attribute in attributes]
    with_uid = bool(names) and names[0] == "UID"
    columns = names[1:] if with_uid else names
    if not columns or not all(name in _NOT_NULL_ITEMS for name in columns):
        return None
    if len(columns) == 1:
        at = position[_NOT_NULL_ITEMS[columns[0]]]
        if with_uid:
            return lambda batch, rows: [
                line % (s, e.uid, r[at]) for (s, e), r in zip(batch, rows, strict=True)
            ]
        return lambda batch, rows: [
            line % (s, r[at]) for (s, _), r in zip(batch, rows, strict=True)
        ]
    pick = operator.itemgetter(*(position[_NOT_NULL_ITEMS[name]] for name in columns))
    if with_uid:
        return lambda batch, rows: [
            line % (s, e.uid, *pick(r)) for (s, e), r in zip(batch, rows, strict=True)
        ]
    return lambda batch, rows: [line % (s, *pick(r)) for (s, _), r in zip(batch, rows, strict=True)]


def _chunked(lines: Iterable[bytes], batch_bytes: int) -> Iterator[bytes]:
    """Responses joined into chunks of about `batch_bytes`."""
    pending: list[bytes] = []
    size = 0
    for text in lines:
        pending.append(text)
        size += len(text)
        if size >= batch_bytes:
            yield b"".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield b"".join(pending)


def _flags_lookup(recent_uids: AbstractSet[int]) -> Callable[[EntryInfo], bytes]:
    """`FLAGS (...)` of an entry; most messages share a few combinations, each built once."""
    cache: dict[tuple[int, frozenset[str], bool], bytes] = {}
    if not recent_uids:
        plain: dict[tuple[int, frozenset[str]], bytes] = {}

        def flags_without_recent(entry: EntryInfo) -> bytes:
            key = (entry.flags, entry.keywords)
            item = plain.get(key)
            if item is None:
                item = plain[key] = flags_item(entry.flags, entry.keywords, False)
            return item

        return flags_without_recent

    def flags_of(entry: EntryInfo) -> bytes:
        key = (entry.flags, entry.keywords, entry.uid in recent_uids)
        item = cache.get(key)
        if item is None:
            item = cache[key] = flags_item(*key)
        return item

    return flags_of


def _row_value(at: int, default: object) -> _Getter:
    def get(entry: EntryInfo, row: Row) -> object:
        return row[at] or default

    return get


def _row_date(at: int) -> _Getter:
    def get(entry: EntryInfo, row: Row) -> object:
        return _internal_date(row[at])

    return get


def _internal_date(value: datetime | None) -> bytes:
    if value is None:
        raise ValueError("internal_date was not loaded")
    return responses.internal_date(value.astimezone(UTC))


def _render_entries_only(
    targets: Sequence[tuple[int, EntryInfo]],
    attributes: Sequence[FetchAttribute],
    recent_uids: AbstractSet[int],
    batch_bytes: int,
) -> Iterator[bytes]:
    """The hot path (`UID FETCH 1:* (UID FLAGS)` on every sync): one %-format per message."""
    formats: list[bytes] = []
    getters: list[Callable[[EntryInfo], object]] = []
    flags_of = _flags_lookup(recent_uids)
    for attribute in attributes:
        if attribute.name == "UID":
            formats.append(b"UID %d")
            getters.append(_entry_uid)
        elif attribute.name == "FLAGS":
            formats.append(b"%s")
            getters.append(flags_of)
        else:  # MODSEQ, RFC 7162 §3.1.4.1
            formats.append(b"MODSEQ (%d)")
            getters.append(_entry_modseq)
    line = b"* %d FETCH (" + b" ".join(formats) + b")\r\n"
    names = tuple(attribute.name for attribute in attributes)
    lines: Iterable[bytes]
    # What clients send on every sync, without a per-message list of getters.
    if names == ("FLAGS",):
        lines = (line % (sequence, flags_of(entry)) for sequence, entry in targets)
    elif names == ("UID", "FLAGS"):
        lines = (line % (sequence, entry.uid, flags_of(entry)) for sequence, entry in targets)
    elif names == ("UID", "FLAGS", "MODSEQ"):
        lines = (
            line % (sequence, entry.uid, flags_of(entry), entry.modseq)
            for sequence, entry in targets
        )
    else:
        lines = (
            line % (sequence, *[getter(entry) for getter in getters]) for sequence, entry in targets
        )
    yield from _chunked(lines, batch_bytes)


def _entry_uid(entry: EntryInfo) -> int:
    return entry.uid


def _entry_modseq(entry: EntryInfo) -> int:
    return entry.modseq


def _columns(attributes: Sequence[FetchAttribute]) -> frozenset[FetchColumn]:
    """The message columns the attributes need (none for UID, FLAGS and MODSEQ)."""
    columns: set[FetchColumn] = set()
    for attribute in attributes:
        name = attribute.name
        if name == "INTERNALDATE":
            columns.add("internal_date")
        elif name == "RFC822.SIZE":
            columns.add("size")
        elif name == "ENVELOPE":
            columns.add("envelope")
        elif name == "BODYSTRUCTURE":
            columns.add("bodystructure")
        elif name == "BODY" and attribute.section is None:
            columns.add("body")
        elif name in ("BODY[]", "RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            columns.update(("blob_hash", "size", "parts_json"))
    return frozenset(columns)


# RFC 3501 §6.4.5: RFC822 is BODY[], RFC822.HEADER is BODY.PEEK[HEADER], RFC822.TEXT is
# BODY[TEXT]; each answers under its own name.
_RFC822_SECTIONS = {
    "RFC822": Section(),
    "RFC822.HEADER": Section(text="HEADER"),
    "RFC822.TEXT": Section(text="TEXT"),
}


def _renderer(attribute: FetchAttribute, recent_uids: AbstractSet[int]) -> _Render:
    name = attribute.name
    if name == "UID":
        return _render_uid
    if name == "FLAGS":
        return _flags_renderer(recent_uids)
    if name == "MODSEQ":
        return _render_modseq  # RFC 7162 §3.1.4.1
    if name == "INTERNALDATE":
        return _render_internal_date
    if name == "RFC822.SIZE":
        return _render_size
    if name == "ENVELOPE":
        return _render_envelope
    if name == "BODYSTRUCTURE":
        return _render_bodystructure
    if name == "BODY" and attribute.section is None:
        return _render_body
    if name == "BODY[]" and attribute.section is not None:
        return _section_renderer(attribute.response_name(), attribute.section, attribute.partial)
    if name in _RFC822_SECTIONS:
        return _section_renderer(attribute.response_name(), _RFC822_SECTIONS[name], None)
    raise ValueError(f"cannot render FETCH item {attribute!r}")


def _render_uid(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"UID %d" % entry.uid)


def _render_modseq(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"MODSEQ (%d)" % entry.modseq)


def _flags_renderer(recent_uids: AbstractSet[int]) -> _Render:
    flags_of = _flags_lookup(recent_uids)

    def render(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
        out.append(flags_of(entry))

    return render


def flags_item(bits: int, keywords: frozenset[str], recent: bool) -> bytes:
    """`FLAGS (...)` in Dovecot's order: system flags, \\Recent, then keywords."""
    names = [name for name, bit in SYSTEM_FLAG_BITS.items() if bits & bit]
    if recent:
        names.append("\\Recent")  # RFC 3501 §2.3.2: session state, never stored
    names.extend(sorted(keywords))
    return b"FLAGS " + responses.flag_list(names)


def _loaded(message: _Message | None) -> FetchData:
    if message is None:  # _columns() asked for data whenever a renderer needs it
        raise ValueError("message data was not loaded")
    return message.data


def _render_internal_date(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    when = _loaded(message).internal_date
    if when is None:
        raise ValueError("internal_date was not loaded")
    # stored in UTC: "17-Jul-1996 02:44:25 +0000", two-digit day as Dovecot sends it
    out.append(b"INTERNALDATE " + responses.internal_date(when.astimezone(UTC)))


def _render_size(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"RFC822.SIZE %d" % (_loaded(message).size or 0))


def _render_envelope(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"ENVELOPE " + (_loaded(message).envelope or b"NIL"))


def _render_bodystructure(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"BODYSTRUCTURE " + (_loaded(message).bodystructure or b"NIL"))


def _render_body(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
    out.append(b"BODY " + (_loaded(message).body or b"NIL"))


def _section_renderer(name: bytes, section: Section, partial: tuple[int, int] | None) -> _Render:
    def render(out: list[bytes], entry: EntryInfo, message: _Message | None) -> None:
        if message is None:
            raise ValueError("message data was not loaded")
        data = fetch_section(message.parts(), section, message.read_range, partial)
        # Dovecot sends every body section as a literal, even an empty one: `{0}`. The
        # prefix goes apart from the data so that a large section is not copied once more.
        out.append(name + b" {%d}\r\n" % len(data))
        out.append(data)

    return render
