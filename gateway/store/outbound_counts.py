"""How the outbound queue looks from outside: each entry's state as people read it, and
the queue depth by state (the `gateway_outbound_queue_depth` metric and the panel).

Apart from `outbound.py` (the queue's write path) so the read side can grow without
touching the relay's hot path.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import func
from sqlmodel import col, select

from gateway.store.base import StoreBase
from gateway.store.models import OutboundMessage
from gateway.store.outbound import BOUNCED, PENDING_STATES, QUEUED, RELAYED

QueueState = Literal["queued", "deferred", "relayed", "bounced"]
# The states the queue depth counts: mail not yet settled.
DEPTH_STATES: tuple[QueueState, ...] = ("queued", "deferred", "relayed")
LISTED_STATES = (*PENDING_STATES, BOUNCED)


def queue_state(state: str, last_error: str | None) -> QueueState:
    """A queued message that already failed once is "deferred": waiting for its next try."""
    if state == QUEUED:
        return "deferred" if last_error is not None else "queued"
    if state == RELAYED:
        return "relayed"
    if state == BOUNCED:
        return "bounced"
    raise ValueError(f"not a listed queue state: {state}")


class OutboundCountOperations(StoreBase):
    def count_outbound_by_state(self) -> dict[QueueState, int]:
        """Messages not yet settled, by state (one grouped query)."""
        counts: dict[QueueState, int] = dict.fromkeys(DEPTH_STATES, 0)
        failed = col(OutboundMessage.last_error).is_not(None)
        with self.database.read() as session:
            rows = session.exec(
                select(OutboundMessage.state, failed, func.count())
                .where(col(OutboundMessage.state).in_(PENDING_STATES))
                .group_by(col(OutboundMessage.state), failed)
            ).all()
        for state, has_error, count in rows:
            key = queue_state(state, "" if has_error else None)
            counts[key] += int(count)
        return counts
