"""\\Recent (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to see it.

Kept in memory per gateway process: after a restart nothing already stored is recent, which
RFC 3501 allows (\\Recent is advisory). Messages this process adds to a mailbox (CREATE, then
APPEND, COPY, MOVE) are recent to the first session that sees them, as in Dovecot.

Mailboxes are told apart by (id, UIDVALIDITY): SQLite may hand a deleted mailbox's id to the
next one created, whose UIDs start again at 1.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

MailboxKey = tuple[int, int]


class RecentTracker:
    def __init__(self) -> None:
        self._claimed: dict[MailboxKey, int] = {}

    def claim(self, mailbox: MailboxKey, uids: Sequence[int]) -> set[int]:
        """The UIDs among `uids` (ascending) no session has seen yet; they are now the caller's."""
        highest = self._claimed.get(mailbox)
        if highest is None:
            # First session since start: messages already there are not new to anyone.
            self._claimed[mailbox] = uids[-1] if uids else 0
            return set()
        if not uids or uids[-1] <= highest:
            return set()
        self._claimed[mailbox] = uids[-1]
        return set(uids[bisect_right(uids, highest) :])

    def peek(self, mailbox: MailboxKey, uids: Sequence[int]) -> set[int]:
        """The UIDs `claim` would give, left for a later session: EXAMINE and STATUS
        must not take \\Recent away (RFC 3501 §6.3.2)."""
        highest = self._claimed.get(mailbox)
        if highest is None or not uids or uids[-1] <= highest:
            return set()
        return set(uids[bisect_right(uids, highest) :])

    def may_have_recent(self, mailbox: MailboxKey, uidnext: int) -> bool:
        """Whether UIDs below `uidnext` may be unclaimed (cheap test before listing UIDs)."""
        highest = self._claimed.get(mailbox)
        return highest is not None and uidnext - 1 > highest

    def note_added(self, mailbox: MailboxKey, first_uid: int) -> None:
        """Messages from `first_uid` on were just added here: recent to whoever sees them first.

        Only a mailbox no session has claimed yet changes: once one has, it already counts
        every UID above what it has seen as new.
        """
        self._claimed.setdefault(mailbox, first_uid - 1)
