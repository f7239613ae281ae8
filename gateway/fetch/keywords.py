"""The per-source keyword every fetched message carries, so clients can filter by account."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from gateway.store import MailStore

# RFC 3501 §9: atom-char excludes "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]"; keep to a
# conservative subset so every client's keyword UI accepts it.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_MAX_NAME = 40


def source_keyword(source_name: str) -> str:
    """`$Src-<sanitized name>`: a valid IMAP keyword atom, stable for a given source name.

    Names that lose characters to sanitizing (or are too long) get a short hash suffix, so two
    sources whose names differ only in unsafe characters still get different keywords.
    """
    cleaned = _UNSAFE.sub("_", source_name).strip("_") or "source"
    if cleaned != source_name or len(cleaned) > _MAX_NAME:
        digest = hashlib.sha256(source_name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:_MAX_NAME]}-{digest}"
    return f"$Src-{cleaned}"


def tag_adopted(
    store: MailStore, mailbox_id: int, uids: Sequence[int], keyword: str, actor: str
) -> None:
    """Give messages another account already delivered this source's keyword too, so a
    client filtering by account finds every message the account holds."""
    if uids:
        store.set_flags(mailbox_id=mailbox_id, uids=uids, flags=[keyword], mode="add", actor=actor)
