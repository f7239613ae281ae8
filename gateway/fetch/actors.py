"""Who made a change, as the store's change log records it, and the local-change event.

The change log keeps the actor as text. A sync engine signs its commits with a
`SourceSyncActor`, so write-back can tell them from a device's: a change made by a sync is
already at its source, and writing it back would only echo it. Every other change to a
mailbox becomes a `LocalChange`, which the scheduler turns into a write-back sync of the
sources feeding that mailbox (`FetchScheduler.write_back`).
"""

from __future__ import annotations

from dataclasses import dataclass

_PREFIX = "source:"


@dataclass(frozen=True)
class SourceSyncActor:
    """A source's sync engine as the author of a change."""

    source_id: int

    def __str__(self) -> str:
        return f"{_PREFIX}{self.source_id}"

    @classmethod
    def parse(cls, actor: str) -> SourceSyncActor | None:
        """The sync actor recorded as `actor`, or None when a device or tool made the change."""
        if not actor.startswith(_PREFIX):
            return None
        number = actor[len(_PREFIX) :]
        return cls(int(number)) if number.isdigit() else None


@dataclass(frozen=True)
class LocalChange:
    """A commit that changed a mailbox, made by a device or tool rather than a sync."""

    user_id: int
    mailbox_id: int
    modseq: int
    actor: str

    @classmethod
    def from_store(
        cls, user_id: int, mailbox_id: int, modseq: int, actor: str
    ) -> LocalChange | None:
        """The event for a store change notice, or None for a sync engine's own commit."""
        if SourceSyncActor.parse(actor) is not None:
            return None
        return cls(user_id, mailbox_id, modseq, actor)


def sync_actor(source_id: int) -> str:
    """The change-log text of a source's sync actor (what the store's `actor=` takes)."""
    return str(SourceSyncActor(source_id))
