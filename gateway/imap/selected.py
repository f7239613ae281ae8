"""The in-memory view of a selected mailbox: UID↔sequence map, flags, pending updates.

Sequence number n is `entries[n - 1]`. The view changes only through `apply_delta` (what the
store says changed) and `flush_expunges` (when the protocol allows telling the client), so
the numbers a client holds stay valid between the points RFC 3501 §7.4.1 allows updates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

from gateway.imap.fetch_render import flags_item
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.protocol.sequence import SequenceSet
from gateway.store.flags import SEEN, SYSTEM_FLAG_BITS
from gateway.store.mailbox_sync import MailboxDelta, MailboxSnapshot
from gateway.store.views import EntryInfo, MailboxInfo

SYSTEM_FLAGS_TEXT = " ".join(SYSTEM_FLAG_BITS)


class InvalidSequenceError(ValueError):
    """A message sequence number beyond the mailbox (RFC 3501 §9 `seq-number`)."""


class SelectedMailbox:
    def __init__(
        self,
        snapshot: MailboxSnapshot,
        *,
        read_only: bool,
        recent: Iterable[int],
        uids: list[int] | None = None,
        keywords: Iterable[str] | None = None,
        first_unseen: int | None = -1,
    ) -> None:
        """A view of `snapshot`; given `uids` (and `keywords`) derived from it, the lists are
        shared with other sessions until this one changes its view (copy on write)."""
        self.mailbox: MailboxInfo = snapshot.mailbox
        self.read_only = read_only
        self.entries: list[EntryInfo] = snapshot.entries
        # Shared with the snapshot, never written; blobs of messages added later go apart.
        self._blob_hashes = snapshot.blob_hashes
        self._added_blob_hashes: dict[int, str] = {}
        self.uids: list[int] = uids if uids is not None else [e.uid for e in snapshot.entries]
        self._shared = True
        self.highestmodseq = snapshot.mailbox.highestmodseq
        self.uidnext = snapshot.mailbox.uidnext
        self.recent: set[int] = set(recent)
        # Expunged in the store but not yet announced: still hold their sequence numbers.
        self.pending_expunges: set[int] = set()
        self.keywords: set[str] = set()
        if keywords is None:
            for entry in self.entries:
                self.keywords.update(entry.keywords)
        else:
            self.keywords.update(keywords)
        # Keywords the client has been told of in FLAGS/PERMANENTFLAGS (SELECT sends these).
        self._announced_keywords = frozenset(self.keywords)
        self._first_unseen = first_unseen
        self._flags_texts: dict[tuple[int, frozenset[str], bool], bytes] = {}

    @property
    def is_pristine(self) -> bool:
        """True while the view is exactly the shared snapshot it was selected from."""
        return self._shared and not self.recent and not self.pending_expunges

    def _own(self) -> None:
        """Copy the shared lists before this view changes them."""
        self._first_unseen = -1
        if self._shared:
            self.entries = list(self.entries)
            self.uids = list(self.uids)
            self._shared = False

    @property
    def mailbox_id(self) -> int:
        return self.mailbox.id

    @property
    def uidvalidity(self) -> int:
        return self.mailbox.uidvalidity

    @property
    def key(self) -> tuple[int, int]:
        """(id, UIDVALIDITY): what tells this mailbox from one that reused its id."""
        return (self.mailbox.id, self.mailbox.uidvalidity)

    def __len__(self) -> int:
        return len(self.entries)

    # --- numbering ------------------------------------------------------------------------

    def resolve_sequence(self, sequence_set: SequenceSet) -> list[int]:
        """0-based indexes for a message-number set, ascending; numbers past the end are BAD."""
        count = len(self.entries)
        ranges = sequence_set.resolve(count)
        for low, high in ranges:
            if low < 1 or high > count:
                raise InvalidSequenceError(f"message number {high} does not exist")
        if len(ranges) == 1:  # `1:*` and most other sets: no set to build and sort
            ((low, high),) = ranges
            return list(range(low - 1, high))
        indexes: set[int] = set()
        for low, high in ranges:
            indexes.update(range(low - 1, high))
        return sorted(indexes)

    def resolve_uids(self, sequence_set: SequenceSet) -> list[int]:
        """0-based indexes of the messages whose UIDs fall in the set (absent UIDs are skipped)."""
        if not self.uids:
            return []
        spans = [
            (bisect_left(self.uids, low), bisect_right(self.uids, high))
            for low, high in sequence_set.resolve(self.uids[-1])
        ]
        if len(spans) == 1:
            return list(range(*spans[0]))
        indexes: set[int] = set()
        for start, end in spans:
            indexes.update(range(start, end))
        return sorted(indexes)

    def index_of(self, uid: int) -> int | None:
        position = bisect_left(self.uids, uid)
        if position < len(self.uids) and self.uids[position] == uid:
            return position
        return None

    def blob_hash(self, message_id: int) -> str | None:
        """The blob of a message in this view, if the view knows it."""
        return self._added_blob_hashes.get(message_id) or self._blob_hashes.get(message_id)

    def first_unseen(self) -> int | None:
        if self._first_unseen != -1:
            return self._first_unseen
        for index, entry in enumerate(self.entries):
            if not entry.flags & SEEN:
                return index + 1
        return None

    # --- updates --------------------------------------------------------------------------

    def flags_lines(self) -> list[bytes]:
        """The untagged FLAGS and PERMANENTFLAGS of SELECT, for the keywords known now."""
        keywords = "".join(f" {keyword}" for keyword in sorted(self.keywords))
        permanent = "" if self.read_only else f"{SYSTEM_FLAGS_TEXT}{keywords} \\*"
        self._announced_keywords = frozenset(self.keywords)
        return [
            responses.untagged(f"FLAGS ({SYSTEM_FLAGS_TEXT}{keywords})"),
            responses.untagged(f"OK [{ResponseCode.PERMANENTFLAGS} ({permanent})] Flags permitted"),
        ]

    def new_keyword_lines(self) -> list[bytes]:
        """FLAGS/PERMANENTFLAGS again if a keyword appeared since they were last sent.

        RFC 3501 §7.2.6: a client learns of keywords from FLAGS; one that first meets a
        keyword in a FETCH response has no way to know the server defined it.
        """
        if self.keywords <= self._announced_keywords:
            return []
        return self.flags_lines()

    def replace_entries(self, updated: Iterable[EntryInfo]) -> list[tuple[int, EntryInfo]]:
        """Take this session's own flag changes; returns (index, entry) of those in the view.

        `updated` is in UID order (as the store returns it), so one merge walk finds every
        index instead of a search per entry (a STORE 1:* changes thousands).
        """
        placed: list[tuple[int, EntryInfo]] = []
        uids = self.uids
        position = 0
        for entry in updated:
            position = bisect_left(uids, entry.uid, position)
            if position < len(uids) and uids[position] == entry.uid:
                placed.append((position, entry))
        if placed:
            self._own()
            for index, entry in placed:
                self.entries[index] = entry
                if entry.keywords:
                    self.keywords.update(entry.keywords)
        # highestmodseq stays: only a delta may move it, or changes other sessions committed
        # just before this one would be skipped.
        return placed

    def apply_delta(
        self,
        delta: MailboxDelta,
        *,
        condstore: bool,
        claim_recent: Callable[[list[int]], Iterable[int]] | None = None,
        expunge_now: bool = False,
        qresync: bool = False,
    ) -> list[bytes]:
        """Fold a store delta into the view; returns the EXISTS/RECENT/FETCH lines to send.

        Expunges are only recorded here unless `expunge_now`; `flush_expunges` announces
        them when allowed.
        """
        lines: list[bytes] = []
        new_entries: list[EntryInfo] = []
        last_uid = self.uids[-1] if self.uids else 0
        for entry in delta.changed:
            if entry.uid > last_uid:
                new_entries.append(entry)
                continue
            index = self.index_of(entry.uid)
            if index is None:
                continue
            known = self.entries[index]
            self._own()
            flags_changed = known.flags != entry.flags or known.keywords != entry.keywords
            self.entries[index] = entry
            self.keywords.update(entry.keywords)
            if flags_changed or (condstore and known.modseq != entry.modseq):
                lines.append(self.flags_response(index, entry, condstore=condstore, uid=True))
        for uid in delta.expunged:
            if self.index_of(uid) is not None:
                self.pending_expunges.add(uid)
        if expunge_now:
            # Before EXISTS, so the count it gives already leaves the expunged out (a MOVE
            # into the selected mailbox: `* 1 EXPUNGE` then `* 1 EXISTS`, as Dovecot sends).
            lines.extend(self.flush_expunges(qresync=qresync))
        if new_entries:
            self._own()
            if claim_recent is not None:
                self.recent.update(claim_recent([entry.uid for entry in new_entries]))
            for entry in new_entries:
                blob_hash = delta.blob_hashes.get(entry.message_id)
                if blob_hash is not None:
                    self._added_blob_hashes[entry.message_id] = blob_hash
                self.entries.append(entry)
                self.uids.append(entry.uid)
                self.keywords.update(entry.keywords)
            lines.append(responses.untagged(f"{len(self.entries)} EXISTS"))
            lines.append(responses.untagged(f"{len(self.recent)} RECENT"))
        self.highestmodseq = max(self.highestmodseq, delta.mailbox.highestmodseq)
        self.uidnext = max(self.uidnext, delta.mailbox.uidnext)
        return self.new_keyword_lines() + lines

    def flush_expunges(self, *, qresync: bool) -> list[bytes]:
        """Remove announced-expunged messages; EXPUNGE lines, or one VANISHED (RFC 7162 §3.2.10)."""
        if not self.pending_expunges:
            return []
        gone = sorted(self.pending_expunges)
        self.pending_expunges.clear()
        indexes = [index for uid in gone if (index := self.index_of(uid)) is not None]
        lines: list[bytes] = []
        if qresync:
            lines.append(responses.untagged(f"VANISHED {responses.sequence_set_text(gone)}"))
        else:
            # Highest first: each number sent is still valid when the client applies it.
            lines.extend(responses.untagged(f"{index + 1} EXPUNGE") for index in reversed(indexes))
        drop = set(indexes)
        self.entries = [entry for index, entry in enumerate(self.entries) if index not in drop]
        self.uids = [entry.uid for entry in self.entries]
        self._shared = False
        self._first_unseen = -1
        self.recent.difference_update(gone)
        return lines

    def flags_response(self, index: int, entry: EntryInfo, *, condstore: bool, uid: bool) -> bytes:
        """`* n FETCH (UID u FLAGS (...) MODSEQ (m))` for one entry."""
        key = (entry.flags, entry.keywords, entry.uid in self.recent)
        flags = self._flags_texts.get(key)
        if flags is None:
            flags = self._flags_texts[key] = flags_item(*key)
        uid_part = b"UID %d " % entry.uid if uid else b""
        modseq_part = b" MODSEQ (%d)" % entry.modseq if condstore else b""
        return b"* %d FETCH (%s%s%s)\r\n" % (index + 1, uid_part, flags, modseq_part)
