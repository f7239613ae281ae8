"""\\Recent (RFC 3501 §2.3.2): a message is recent in exactly one session, the first to see it.

Kept in memory per gateway process: after a restart nothing is recent, which RFC 3501 allows
(\\Recent is advisory) and no mainstream client relies on.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence


class RecentTracker:
    def __init__(self) -> None:
        self._claimed: dict[int, int] = {}

    def claim(self, mailbox_id: int, uids: Sequence[int]) -> set[int]:
        """The UIDs among `uids` (ascending) no session has seen yet; they are now the caller's."""
        highest = self._claimed.get(mailbox_id)
        if highest is None:
            # First session since start: messages already there are not new to anyone.
            self._claimed[mailbox_id] = uids[-1] if uids else 0
            return set()
        if not uids or uids[-1] <= highest:
            return set()
        self._claimed[mailbox_id] = uids[-1]
        return set(uids[bisect_right(uids, highest) :])

    def forget(self, mailbox_id: int) -> None:
        self._claimed.pop(mailbox_id, None)
