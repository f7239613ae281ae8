"""Three-way merge of flags between the unified mailbox and an IMAP source.

Both sides are compared with the state they last agreed on (the origin's synced flags). A
flag changed on one side takes that side's value; a flag changed on both sides necessarily has
the same value on both (flags are booleans), so the merge never has to pick a winner for a
flag. Keywords work the same way, except the gateway's own per-source keywords, which are
local only, and all keywords when the source cannot store them (no `\\*` in PERMANENTFLAGS).
"""

from __future__ import annotations

from typing import NamedTuple

LOCAL_ONLY_PREFIX = "$Src-"


class FlagState(NamedTuple):
    bits: int
    keywords: frozenset[str]


class MergeResult(NamedTuple):
    merged: FlagState
    local_changed: bool
    remote_changed: bool

    @property
    def both_changed(self) -> bool:
        return self.local_changed and self.remote_changed


def syncable_keywords(keywords: frozenset[str]) -> frozenset[str]:
    return frozenset(k for k in keywords if not k.startswith(LOCAL_ONLY_PREFIX))


def merge_flags(
    base: FlagState, local: FlagState, remote: FlagState, *, remote_keywords: bool = True
) -> MergeResult:
    """The flags both sides should carry next; local-only keywords are left out."""
    local_bits_changed = local.bits ^ base.bits
    bits = (local.bits & local_bits_changed) | (remote.bits & ~local_bits_changed)
    base_kw = syncable_keywords(base.keywords)
    local_kw = syncable_keywords(local.keywords)
    remote_kw = syncable_keywords(remote.keywords) if remote_keywords else base_kw
    local_kw_changed = local_kw ^ base_kw
    keywords = (local_kw & local_kw_changed) | (remote_kw - local_kw_changed)
    if not remote_keywords:
        keywords = local_kw
    return MergeResult(
        merged=FlagState(bits, keywords),
        local_changed=bool(local_bits_changed or local_kw_changed),
        remote_changed=remote.bits != base.bits or remote_kw != base_kw,
    )
