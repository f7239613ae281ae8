"""IMAP system flags as a bitmask, keywords as a normalised text column.

A bitmask keeps the hot path (FETCH FLAGS for a whole mailbox) to one integer per message.
"""

from __future__ import annotations

from collections.abc import Iterable

SEEN = 1
ANSWERED = 2
FLAGGED = 4
DELETED = 8
DRAFT = 16

# RFC 3501 §2.3.2: the system flags a client may store. \Recent is session state, never stored.
# In Dovecot's order, so FLAGS responses read the same as Dovecot's.
SYSTEM_FLAG_BITS: dict[str, int] = {
    "\\Answered": ANSWERED,
    "\\Flagged": FLAGGED,
    "\\Deleted": DELETED,
    "\\Seen": SEEN,
    "\\Draft": DRAFT,
}
_BITS_BY_LOWER = {name.lower(): bit for name, bit in SYSTEM_FLAG_BITS.items()}


def split_flags(names: Iterable[str]) -> tuple[int, frozenset[str]]:
    """Split IMAP flag names into a system-flag bitmask and a set of keywords."""
    bits = 0
    keywords: set[str] = set()
    for name in names:
        bit = _BITS_BY_LOWER.get(name.lower())
        if bit is not None:
            bits |= bit
        elif name.startswith("\\"):
            # Unknown system flags (e.g. \Recent) cannot be stored: RFC 3501 §6.4.6 lets us
            # drop them.
            continue
        else:
            keywords.add(name)
    return bits, frozenset(keywords)


def flag_names(bits: int, keywords: Iterable[str] = ()) -> list[str]:
    """Render a bitmask and keywords back to IMAP flag names, system flags first."""
    names = [name for name, bit in SYSTEM_FLAG_BITS.items() if bits & bit]
    names.extend(sorted(keywords))
    return names


def encode_keywords(keywords: Iterable[str]) -> str:
    """Store keywords as one space-separated, sorted string (IMAP atoms hold no spaces)."""
    return " ".join(sorted(set(keywords)))


def decode_keywords(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()
