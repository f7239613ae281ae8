"""\\Recent (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to see it.

Kept in memory per gateway process: after a restart nothing is recent, which RFC 3501 allows
(\\Recent is advisory) and no mainstream client relies on.
"""

from __future__ import annotations

from collections.abc import Iterable


class RecentTracker:
    def __init__(self) -> None:
        self._claimed: dict[int, int] = {}

    def claim(self, mailbox_id: int, uids: Iterable[int]) -> set[int]:
        """The UIDs among `uids` no session has seen yet; they are now this caller's."""
        highest = self._claimed.get(mailbox_id)
        ordered = sorted(uids)
        if highest is None:
            # First session since start: messages already there are not new to anyone.
            self._claimed[mailbox_id] = ordered[-1] if ordered else 0
            return set()
        fresh = {uid for uid in ordered if uid > highest}
        if ordered:
            self._claimed[mailbox_id] = max(highest, ordered[-1])
        return fresh

    def forget(self, mailbox_id: int) -> None:
        self._claimed.pop(mailbox_id, None)
