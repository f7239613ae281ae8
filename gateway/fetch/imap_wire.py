"""UID sets as the sync engine writes and reads them (sans-IO).

`sequence_set` keeps commands short for long runs of UIDs; `parse_uid_set` expands the sets a
server returns in COPYUID (RFC 4315 §4.3). The commands themselves go through `ImapPeer`.
"""

from __future__ import annotations

from collections.abc import Iterable


def sequence_set(uids: Iterable[int]) -> str:
    """`1:3,7,9:10` for [1, 2, 3, 7, 9, 10]: short commands for long runs of UIDs."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = previous = None
    for uid in ordered:
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            ranges.append(_range(start, previous))
        start = previous = uid
    if start is not None:
        ranges.append(_range(start, previous))
    return ",".join(ranges)


def _range(start: int, end: int | None) -> str:
    return str(start) if end is None or end == start else f"{start}:{end}"


def parse_uid_set(text: str) -> list[int]:
    """Expand a UID set without `*` (as in COPYUID), keeping its order (RFC 4315 §4.3)."""
    uids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        step = 1 if last >= first else -1
        uids.extend(range(first, last + step, step))
    return uids
