"""IMAP SEARCH (RFC 3501 §6.4.4, RFC 7162 §3.1.5) over a selected mailbox, as Dovecot 2.3 does it.

The criteria tree is evaluated on sets of candidates, cheapest key first: flag, UID, sequence
and MODSEQ keys from the session's entries; size and date keys from a few small columns; text
keys last, so they read only the messages still able to match. Substrings are compared the
way Dovecot's search normaliser compares them (canonical decomposition, then case folding):
"ete" is not in "été" but "e" is, "KÖLN" is in "Köln", "ss" is not in "ß".

Known differences from Dovecot, all in what the stored search text holds:
* FROM/TO/CC/BCC/SUBJECT look at the last such field (there is normally one); Dovecot at each.
* TEXT does not see the header blocks of body parts (Content-Type: ... of an attachment).
* LARGER/SMALLER use the stored size; Dovecot counts bare LF as CRLF.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, tzinfo
from email.utils import parsedate_to_datetime

from gateway.imap.protocol.search_keys import (
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)
from gateway.imap.search_limits import SearchTooCostlyError
from gateway.imap.text_match import Needle
from gateway.store.errors import NotFoundError
from gateway.store.flags import SYSTEM_FLAG_BITS
from gateway.store.search_data import SearchDataOperations, SearchField, SearchFields
from gateway.store.views import EntryInfo

__all__ = ["search_messages", "uses_modseq"]

_FLAG_BITS = {name.lower(): bit for name, bit in SYSTEM_FLAG_BITS.items()}
# Columns holding the decoded value of FROM/TO/CC/BCC/SUBJECT (RFC 3501 §6.4.4).
_FIELD_COLUMNS: dict[str, SearchField] = {
    "FROM": "from_addr",
    "TO": "to_addr",
    "CC": "cc_addr",
    "BCC": "bcc_addr",
    "SUBJECT": "subject",
}
# Dovecot compresses runs of LWSP in the Subject before matching (SEARCH_HEADER_COMPRESS_LWSP).
_LWSP_RUN = re.compile(r"[ \t\r\n]+")
# Dovecot reads a missing or unparseable Date: as the epoch.
_NO_SENT_DATE = date(1970, 1, 1)
# Cost classes: keys are evaluated cheapest first within AND, and OR tries its cheaper side first.
_ENTRY_COST, _COLUMN_COST, _FIELD_COST, _HEADER_COST, _BODY_COST = range(5)


def search_messages(
    store: SearchDataOperations,
    *,
    criteria: SearchKey,
    entries: Sequence[EntryInfo],
    recent_uids: AbstractSet[int] = frozenset(),
    timezone: tzinfo | None = None,
    deadline: float | None = None,
) -> list[int]:
    """0-based indexes (ascending) of the `entries` matching `criteria`.

    `entries` is the selected mailbox in sequence order. Blocking: it reads the database and,
    for BODY/TEXT on bodies longer than the stored 128 KiB, message files; run it in a worker
    thread. BEFORE/ON/SINCE take the internal date's day in `timezone` (None: the system's
    local time zone, as Dovecot does). Past `deadline` (time.monotonic()) it raises
    SearchTooCostlyError.
    """
    search = _Search(store, entries, recent_uids, timezone, deadline)
    return search.match(criteria, list(range(len(entries))))


def uses_modseq(criteria: SearchKey) -> bool:
    """True if the criteria hold MODSEQ: the response then ends with (MODSEQ n) (RFC 7162)."""
    if isinstance(criteria, SearchModSeq):
        return True
    if isinstance(criteria, SearchNot):
        return uses_modseq(criteria.key)
    if isinstance(criteria, SearchOr):
        return uses_modseq(criteria.left) or uses_modseq(criteria.right)
    if isinstance(criteria, SearchAnd):
        return any(uses_modseq(key) for key in criteria.keys)
    return False


def _cost(key: SearchKey) -> int:
    if isinstance(key, SearchAll | SearchFlag | SearchSequence | SearchModSeq):
        return _ENTRY_COST
    if isinstance(key, SearchSize):
        return _COLUMN_COST
    if isinstance(key, SearchDate):
        return _COLUMN_COST if key.field == "internal" else _FIELD_COST
    if isinstance(key, SearchHeader):
        return _FIELD_COST if key.field.upper() in _FIELD_COLUMNS and key.value else _HEADER_COST
    if isinstance(key, SearchBody | SearchText):
        return _BODY_COST
    if isinstance(key, SearchNot):
        return _cost(key.key)
    if isinstance(key, SearchOr):
        return max(_cost(key.left), _cost(key.right))
    return max((_cost(k) for k in key.keys), default=_ENTRY_COST)


class _Search:
    """One evaluation: the mailbox view, and the small columns loaded so far."""

    def __init__(
        self,
        store: SearchDataOperations,
        entries: Sequence[EntryInfo],
        recent_uids: AbstractSet[int],
        timezone: tzinfo | None,
        deadline: float | None = None,
    ) -> None:
        self.store = store
        self.deadline = deadline
        self.entries = entries
        self.recent_uids = recent_uids
        self.timezone = timezone
        self.uids = [entry.uid for entry in entries]
        # size, internal_date and sent_date by message id, loaded together on first need
        self.columns: dict[int, SearchFields] = {}

    def match(self, key: SearchKey, candidates: list[int]) -> list[int]:
        """The candidates (ascending indexes) that match `key`, in the same order."""
        if not candidates:
            return candidates
        self._check_deadline()
        if isinstance(key, SearchAll):
            return candidates
        if isinstance(key, SearchAnd):
            for sub_key in sorted(key.keys, key=_cost):
                candidates = self.match(sub_key, candidates)
                if not candidates:
                    break
            return candidates
        if isinstance(key, SearchOr):
            first, second = sorted((key.left, key.right), key=_cost)
            matched = set(self.match(first, candidates))
            if len(matched) < len(candidates):
                rest = [index for index in candidates if index not in matched]
                matched.update(self.match(second, rest))
            return [index for index in candidates if index in matched]
        if isinstance(key, SearchNot):
            excluded = set(self.match(key.key, candidates))
            return [index for index in candidates if index not in excluded]
        if isinstance(key, SearchSequence):
            return self._match_sequence(key, candidates)
        if isinstance(key, SearchFlag):
            return self._match_flag(key, candidates)
        if isinstance(key, SearchModSeq):
            entries = self.entries
            return [index for index in candidates if entries[index].modseq >= key.modseq]
        if isinstance(key, SearchSize):
            return self._match_size(key, candidates)
        if isinstance(key, SearchDate):
            if key.field == "internal":
                return self._match_internal_date(key, candidates)
            return self._match_sent_date(key, candidates)
        if isinstance(key, SearchHeader):
            return self._match_header(key, candidates)
        return self._match_text(key, candidates)

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise SearchTooCostlyError

    # --- keys answered from the entries ---------------------------------------------------

    def _match_sequence(self, key: SearchSequence, candidates: list[int]) -> list[int]:
        count = len(self.entries)
        if count == 0:
            return []
        spans: list[tuple[int, int]] = []  # [start, stop) index ranges
        if key.uid:
            # RFC 3501 §6.4.8: "*" is the largest UID in use, so 5:* holds the last message
            # even when its UID is below 5. Bisect: UIDs go up to 2^32.
            for low, high in key.sequence_set.resolve(self.uids[-1]):
                spans.append((bisect_left(self.uids, low), bisect_right(self.uids, high)))
        else:
            for first, last in key.sequence_set.ranges:
                numbers = [bound for bound in (first, last) if bound is not None]
                if not numbers:
                    low = high = count
                elif len(numbers) == 1:
                    # Dovecot reads "*" in a range as "no upper limit": 20:* is empty in a
                    # mailbox of 13 messages, 13:* and *:13 are message 13.
                    low, high = numbers[0], count
                else:
                    low, high = min(numbers), max(numbers)
                spans.append((low - 1, min(high, count)))
        selected: list[int] = []
        for start, stop in _merge_spans(spans):
            selected.extend(
                candidates[bisect_left(candidates, start) : bisect_left(candidates, stop)]
            )
        return selected

    def _match_flag(self, key: SearchFlag, candidates: list[int]) -> list[int]:
        entries = self.entries
        name = key.flag
        lowered = name.lower()
        if lowered == "\\recent":
            recent = self.recent_uids
            return [i for i in candidates if (entries[i].uid in recent) == key.present]
        bit = _FLAG_BITS.get(lowered)
        if bit is not None:
            return [i for i in candidates if bool(entries[i].flags & bit) == key.present]
        if name.startswith("\\"):
            # A system flag we do not store is never set (RFC 3501 §2.3.2).
            return [] if key.present else candidates
        return [i for i in candidates if _has_keyword(entries[i].keywords, name) == key.present]

    # --- keys answered from small columns -------------------------------------------------

    def _load_columns(self, candidates: list[int]) -> dict[int, SearchFields]:
        missing = {self.entries[i].message_id for i in candidates} - self.columns.keys()
        if missing:
            self.columns.update(
                self.store.search_message_fields(
                    message_ids=missing, fields=("size", "internal_date", "sent_date")
                )
            )
        return self.columns

    def _match_size(self, key: SearchSize, candidates: list[int]) -> list[int]:
        columns = self._load_columns(candidates)
        entries, limit = self.entries, key.size
        larger = key.relation == "larger"
        selected = []
        for index in candidates:
            fields = columns.get(entries[index].message_id)
            if fields is None or fields.size is None:
                continue  # expunged meanwhile
            if (fields.size > limit) if larger else (fields.size < limit):
                selected.append(index)
        return selected

    def _match_internal_date(self, key: SearchDate, candidates: list[int]) -> list[int]:
        # RFC 3501 §6.4.4 "disregarding time and timezone"; Dovecot takes the day in the
        # server's local time zone (the stored instant has lost its original offset).
        columns = self._load_columns(candidates)
        test = _day_test(key)
        selected = []
        for index in candidates:
            fields = columns.get(self.entries[index].message_id)
            if fields is None or fields.internal_date is None:
                continue
            if test(fields.internal_date.astimezone(self.timezone).date()):
                selected.append(index)
        return selected

    def _match_sent_date(self, key: SearchDate, candidates: list[int]) -> list[int]:
        """SENT*: the Date: field's day in its own zone (Dovecot: missing/invalid = 1970-01-01).

        The stored sent date is UTC; its day is off by at most one from the day in the
        field's own zone, so only messages within a day of the key read the Date: field.
        """
        columns = self._load_columns(candidates)
        test = _day_test(key)
        selected: list[int] = []
        uncertain: list[int] = []
        for index in candidates:
            fields = columns.get(self.entries[index].message_id)
            if fields is None:
                continue
            if fields.sent_date is None:
                day = _NO_SENT_DATE
            else:
                day = fields.sent_date.astimezone(UTC).date()
                if abs((day - key.day).days) < 2:
                    uncertain.append(index)
                    continue
            if test(day):
                selected.append(index)
        if uncertain:

            def sent_day_matches(_message_id: int, row: SearchFields) -> bool:
                return test(_sent_day(row.header_text or "", row.sent_date))

            exact = set(
                self._filter_rows(uncertain, ("header_text", "sent_date"), sent_day_matches)
            )
            selected = sorted(set(selected) | exact)
        return selected

    # --- text keys ------------------------------------------------------------------------

    def _match_header(self, key: SearchHeader, candidates: list[int]) -> list[int]:
        name = key.field.upper()
        needle = Needle(key.value)
        if not name:
            return []  # Dovecot: HEADER "" x matches nothing
        if not key.value:
            # RFC 3501 §6.4.4: an empty string matches every message that has the field.
            field_start = re.compile(r"(?:\A|\n)" + re.escape(name) + ":", re.IGNORECASE)

            def has_field(_message_id: int, row: SearchFields) -> bool:
                return field_start.search(row.header_text or "") is not None

            return self._filter_rows(candidates, ("header_text",), has_field)
        column = _FIELD_COLUMNS.get(name)
        if column is not None:
            compress = name == "SUBJECT"

            def field_matches(_message_id: int, row: SearchFields) -> bool:
                value = getattr(row, column) or ""
                if compress and ("  " in value or "\t" in value):
                    value = _LWSP_RUN.sub(" ", value)
                return needle.found_in(value)

            return self._filter_rows(candidates, (column,), field_matches)
        field_values = re.compile(r"^" + re.escape(name) + r": (.*)$", re.IGNORECASE | re.MULTILINE)

        def header_matches(_message_id: int, row: SearchFields) -> bool:
            return any(needle.found_in(v) for v in field_values.findall(row.header_text or ""))

        return self._filter_rows(candidates, ("header_text",), header_matches)

    def _match_text(self, key: SearchBody | SearchText, candidates: list[int]) -> list[int]:
        if not key.value:
            return candidates  # Dovecot: BODY "" and TEXT "" match every message
        needle = Needle(key.value)
        with_header = isinstance(key, SearchText)
        fields: tuple[SearchField, ...] = ("body_text", "body_text_truncated")
        if with_header:
            fields = ("header_text", *fields)

        def text_matches(message_id: int, row: SearchFields) -> bool:
            if with_header and needle.found_in(row.header_text or ""):
                return True
            if needle.found_in(row.body_text or ""):
                return True
            if row.body_text_truncated:
                return self._full_body_contains(message_id, needle)
            return False

        return self._filter_rows(candidates, fields, text_matches)

    def _full_body_contains(self, message_id: int, needle: Needle) -> bool:
        """BODY/TEXT beyond the stored 128 KiB: decode the message's text parts again."""
        try:
            # Dovecot matches within one part at a time, never across two.
            texts = self.store.read_body_texts(message_id=message_id)
            return any(needle.found_in(text) for text in texts)
        except NotFoundError:
            return False  # expunged meanwhile

    def _filter_rows(
        self,
        candidates: list[int],
        fields: tuple[SearchField, ...],
        predicate: Callable[[int, SearchFields], bool],
    ) -> list[int]:
        """Candidates whose message's `fields` satisfy `predicate`, read 500 at a time."""
        entries = self.entries
        wanted = {entries[index].message_id for index in candidates}
        matched: set[int] = set()
        for chunk in self.store.iter_message_fields(message_ids=wanted, fields=fields):
            self._check_deadline()
            matched.update(
                message_id for message_id, row in chunk.items() if predicate(message_id, row)
            )
        return [index for index in candidates if entries[index].message_id in matched]


def _has_keyword(keywords: frozenset[str], name: str) -> bool:
    if name in keywords:
        return True
    # Keywords are atoms compared without regard to case, as Dovecot does.
    lowered = name.lower()
    return any(keyword.lower() == lowered for keyword in keywords)


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(span for span in spans if span[0] < span[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def _day_test(key: SearchDate) -> Callable[[date], bool]:
    day = key.day
    if key.relation == "before":
        return lambda value: value < day
    if key.relation == "on":
        return lambda value: value == day
    return lambda value: value >= day


_DATE_FIELD = re.compile(r"^date: (.*)$", re.IGNORECASE | re.MULTILINE)


def _sent_day(header_text: str, stored: datetime | None) -> date:
    """Day of the first Date: field in its own zone (Dovecot reads the first one)."""
    match = _DATE_FIELD.search(header_text)
    if match is not None:
        try:
            parsed = parsedate_to_datetime(match.group(1))
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None:
            return parsed.date()  # a zone-less date is read as UTC: same day either way
    if stored is not None:
        return stored.astimezone(UTC).date()
    return _NO_SENT_DATE
