"""Per-source retention, as users know it from mail clients: keep, delete after N days, or
delete after download. Deciding is pure; `pop3.py` sends the DELEs.

DESIGN invariant 1: only messages whose origin row is committed (their blob fsynced before
that) may ever be chosen; callers pass exactly those keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gateway.fetch.errors import SyncError

RetentionMode = Literal["keep", "delete_after_days", "delete_after_download"]
_MODES: tuple[RetentionMode, ...] = ("keep", "delete_after_days", "delete_after_download")


@dataclass(frozen=True)
class RetentionPolicy:
    mode: RetentionMode = "keep"
    days: float = 0.0

    @property
    def deletes(self) -> bool:
        return self.mode != "keep"


def retention_policy(options: Mapping[str, Any]) -> RetentionPolicy:
    """Read `retention` (and `retention_days`) from source options; default keep."""
    mode = options.get("retention", "keep")
    if mode not in _MODES:
        raise SyncError("protocol", f"unknown retention option {str(mode)[:40]!r}")
    if mode != "delete_after_days":
        return RetentionPolicy(mode)
    try:
        days = float(options.get("retention_days", ""))
    except (TypeError, ValueError):
        raise SyncError("protocol", "retention_days must be a number of days") from None
    if days < 0:
        raise SyncError("protocol", "retention_days must not be negative")
    return RetentionPolicy("delete_after_days", days)


def messages_to_delete(
    policy: RetentionPolicy,
    *,
    keys: Mapping[int, str],
    stored: set[str],
    first_seen: Mapping[str, datetime],
    now: datetime,
) -> list[int]:
    """Message numbers to DELE: stored ones the policy says may go, ascending.

    `keys` maps message number → origin key; `stored` holds committed keys; `first_seen`
    (for delete_after_days) when each key was first stored.
    """
    if policy.mode == "keep":
        return []
    chosen: list[int] = []
    cutoff = now - timedelta(days=policy.days)
    for number in sorted(keys):
        key = keys[number]
        if key not in stored:
            continue
        if policy.mode == "delete_after_days":
            seen = first_seen.get(key)
            if seen is None or seen > cutoff:
                continue
        chosen.append(number)
    return chosen
