"""The in-memory selected-mailbox view: numbering, deltas, held-back expunges."""

from __future__ import annotations

import pytest

from gateway.imap.list_pattern import compile_pattern
from gateway.imap.mailbox_list import list_mailboxes
from gateway.imap.protocol.sequence import SequenceSet
from gateway.imap.recent import RecentTracker
from gateway.imap.selected import InvalidSequenceError, SelectedMailbox
from gateway.store.flags import FLAGGED, SEEN
from gateway.store.mailbox_sync import MailboxDelta, MailboxSnapshot
from gateway.store.views import EntryInfo, MailboxInfo


def mailbox(highestmodseq: int = 5, uidnext: int = 40, name: str = "INBOX") -> MailboxInfo:
    return MailboxInfo(
        id=1,
        user_id=1,
        name=name,
        special_use=None,
        uidvalidity=7,
        uidnext=uidnext,
        highestmodseq=highestmodseq,
    )


def entry(
    uid: int, flags: int = 0, modseq: int = 1, keywords: frozenset[str] = frozenset()
) -> EntryInfo:
    return EntryInfo(uid=uid, message_id=uid, flags=flags, keywords=keywords, modseq=modseq)


def view(uids: list[int]) -> SelectedMailbox:
    return SelectedMailbox(
        MailboxSnapshot(mailbox(), [entry(uid) for uid in uids]), read_only=False, recent=()
    )


def test_sequence_and_uid_resolution() -> None:
    selected = view([3, 10, 20, 30])
    assert selected.resolve_sequence(SequenceSet(((2, None),))) == [1, 2, 3]
    assert selected.resolve_sequence(SequenceSet(((4, 2),))) == [1, 2, 3]
    with pytest.raises(InvalidSequenceError):
        selected.resolve_sequence(SequenceSet(((5, 5),)))
    assert selected.resolve_uids(SequenceSet(((10, 25),))) == [1, 2]
    # RFC 3501 §6.4.8: "n:*" always includes the last message, even if n is past it.
    assert selected.resolve_uids(SequenceSet(((4_000_000_000, None),))) == [3]
    assert selected.resolve_uids(SequenceSet(((1, 2), (31, 40)))) == []
    assert view([]).resolve_uids(SequenceSet(((1, None),))) == []


def test_delta_announces_new_mail_and_flag_changes_but_holds_expunges() -> None:
    selected = view([3, 10, 20])
    delta = MailboxDelta(
        mailbox(highestmodseq=9, uidnext=50),
        changed=[entry(10, SEEN, 8), entry(41, 0, 9), entry(42, FLAGGED, 9)],
        expunged=[3, 999],
    )
    lines = selected.apply_delta(delta, condstore=True, claim_recent=lambda uids: uids)
    assert lines == [
        b"* 2 FETCH (UID 10 FLAGS (\\Seen) MODSEQ (8))\r\n",
        b"* 5 EXISTS\r\n",
        b"* 2 RECENT\r\n",
    ]
    assert selected.highestmodseq == 9 and selected.uidnext == 50
    # The expunged message keeps its number until expunges may be sent.
    assert selected.uids == [3, 10, 20, 41, 42]
    assert selected.pending_expunges == {3}
    assert selected.flush_expunges(qresync=False) == [b"* 1 EXPUNGE\r\n"]
    assert selected.uids == [10, 20, 41, 42]
    assert selected.flush_expunges(qresync=False) == []


def test_expunges_are_sent_highest_first_or_as_vanished() -> None:
    selected = view([1, 2, 3, 4, 5])
    selected.apply_delta(MailboxDelta(mailbox(), [], [2, 4]), condstore=False)
    assert selected.flush_expunges(qresync=False) == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
    selected.apply_delta(MailboxDelta(mailbox(), [], [1, 3, 5]), condstore=False)
    assert selected.flush_expunges(qresync=True) == [b"* VANISHED 1,3,5\r\n"]
    assert len(selected) == 0


def test_own_changes_are_not_reported_twice() -> None:
    selected = view([1, 2])
    mine = entry(2, SEEN, 6)
    selected.replace_entries([mine])
    lines = selected.apply_delta(MailboxDelta(mailbox(6), [mine], []), condstore=True)
    assert lines == []


def test_recent_belongs_to_the_first_session_only() -> None:
    tracker = RecentTracker()
    assert tracker.claim((1, 7), [1, 2]) == set()
    assert tracker.claim((1, 7), [1, 2, 3]) == {3}
    assert tracker.claim((1, 7), [3, 4]) == {4}
    assert tracker.claim((1, 7), [4]) == set()


def test_messages_added_here_are_recent_to_the_first_session() -> None:
    tracker = RecentTracker()
    tracker.note_added((1, 7), 1)
    tracker.note_added((1, 7), 2)  # a later APPEND: the first one set the baseline
    assert tracker.claim((1, 7), [1, 2]) == {1, 2}
    assert tracker.claim((1, 7), [1, 2]) == set()
    # A mailbox that reused id 1 under a new UIDVALIDITY starts apart.
    tracker.note_added((1, 8), 1)
    assert tracker.claim((1, 8), [1]) == {1}


def test_list_patterns() -> None:
    assert compile_pattern("", "*").matches("a/b")
    assert not compile_pattern("", "%").matches("a/b")
    assert compile_pattern("", "inbox").matches("INBOX")
    assert compile_pattern("Projects/", "%").matches("Projects/x")
    boxes = [mailbox(name=name) for name in ("INBOX", "Work", "Work/2026", "Zeta")]
    listed = list_mailboxes(boxes, reference="", patterns=["%"])
    assert [(item.name, item.attributes) for item in listed] == [
        ("INBOX", ("\\HasNoChildren",)),
        ("Work", ("\\HasChildren",)),
        ("Zeta", ("\\HasNoChildren",)),
    ]


def test_cached_snapshot_moves_forward_by_a_delta() -> None:
    from gateway.imap.snapshot_cache import apply_delta

    snapshot = MailboxSnapshot(mailbox(highestmodseq=5), [entry(1), entry(2), entry(3)])
    delta = MailboxDelta(
        mailbox(highestmodseq=8),
        changed=[entry(2, SEEN, 7), entry(5, 0, 8), entry(4, 0, 6)],
        expunged=[1, 99],
    )
    moved = apply_delta(snapshot, delta)
    assert [(e.uid, e.flags) for e in moved.entries] == [(2, SEEN), (3, 0), (4, 0), (5, 0)]
    assert moved.mailbox.highestmodseq == 8
    assert apply_delta(moved, MailboxDelta(mailbox(8), [], [])).entries is moved.entries


def test_blob_hashes_follow_the_snapshot_and_the_view() -> None:
    from gateway.imap.snapshot_cache import apply_delta

    blobs = {1: "a" * 64, 2: "b" * 64, 3: "c" * 64}
    snapshot = MailboxSnapshot(mailbox(highestmodseq=5), [entry(1), entry(2), entry(3)], blobs)
    delta = MailboxDelta(
        mailbox(highestmodseq=8),
        changed=[entry(2, SEEN, 7), entry(5, 0, 8)],
        expunged=[1],
        blob_hashes={2: "b" * 64, 5: "e" * 64},
    )
    moved = apply_delta(snapshot, delta)
    assert moved.blob_hashes == {2: "b" * 64, 3: "c" * 64, 5: "e" * 64}
    assert snapshot.blob_hashes == blobs  # the older snapshot is shared, never changed

    # UIDs 2 and 4 share one message (a COPY within the mailbox): expunging one keeps it.
    shared = MailboxSnapshot(
        mailbox(highestmodseq=5), [entry(2), entry(3), entry(4)._replace(message_id=2)], blobs
    )
    kept = apply_delta(shared, MailboxDelta(mailbox(highestmodseq=6), [], expunged=[2, 3]))
    assert kept.blob_hashes == {1: "a" * 64, 2: "b" * 64}

    selected = SelectedMailbox(snapshot, read_only=False, recent=())
    selected.apply_delta(delta, condstore=False)
    assert selected.blob_hash(5) == "e" * 64
    assert selected.blob_hash(1) == "a" * 64  # still held by an expunge not yet announced
    assert selected.blob_hash(9) is None
    assert snapshot.blob_hashes == blobs
