"""How a sync engine signs the changes it commits, so write-back can tell them from a device's."""

from __future__ import annotations

SYNC_ACTOR_PREFIX = "source:"


def sync_actor(source_id: int) -> str:
    return f"{SYNC_ACTOR_PREFIX}{source_id}"
