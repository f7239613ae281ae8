"""LIST/LSUB matching and attributes (RFC 3501 §6.3.8, RFC 5258, RFC 6154, RFC 3348)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.imap.protocol import responses
from gateway.store.views import MailboxInfo

SEPARATOR = "/"


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """`*` matches anything, `%` anything but the separator; INBOX matches in any case."""
    full = pattern if not reference or pattern.startswith(SEPARATOR) else reference + pattern
    parts = []
    for char in full:
        if char == "*":
            parts.append(".*")
        elif char == "%":
            parts.append(f"[^{re.escape(SEPARATOR)}]*")
        else:
            parts.append(re.escape(char))
    body = "".join(parts)
    if full[:5].upper() == "INBOX" and not any(c in full[:5] for c in "*%"):
        body = "(?i:INBOX)" + "".join(parts[5:])
    return re.compile(body, re.DOTALL)


@dataclass(frozen=True)
class ListedMailbox:
    name: str
    attributes: tuple[str, ...]
    mailbox: MailboxInfo | None
    child_info: bool = False  # RFC 5258 CHILDINFO ("SUBSCRIBED")


def list_mailboxes(
    mailboxes: Sequence[MailboxInfo],
    *,
    reference: str,
    patterns: Iterable[str],
    selection: frozenset[str] = frozenset(),
    return_options: frozenset[str] = frozenset(),
) -> list[ListedMailbox]:
    """The mailboxes a LIST answers with, in name order, each with its attributes."""
    regexes = [pattern_regex(reference, pattern) for pattern in patterns]
    names = {mailbox.name for mailbox in mailboxes}
    subscribed_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in return_options
    listed: list[ListedMailbox] = []
    for mailbox in sorted(mailboxes, key=lambda item: (item.name != "INBOX", item.name)):
        if not any(regex.fullmatch(mailbox.name) for regex in regexes):
            continue
        if special_only and not mailbox.special_use:
            continue
        attributes = ["\\HasChildren" if _has_children(mailbox.name, names) else "\\HasNoChildren"]
        if mailbox.special_use:
            attributes.append(mailbox.special_use)
        if show_subscribed and mailbox.subscribed:
            attributes.append("\\Subscribed")
        if subscribed_only and not mailbox.subscribed:
            # RFC 5258 §3.5 RECURSIVEMATCH: an unsubscribed parent of subscribed children.
            if "RECURSIVEMATCH" in selection and _has_subscribed_child(mailbox.name, mailboxes):
                listed.append(ListedMailbox(mailbox.name, tuple(attributes), mailbox, True))
            continue
        listed.append(ListedMailbox(mailbox.name, tuple(attributes), mailbox))
    return listed


def render_list(item: ListedMailbox, *, command: str = "LIST") -> bytes:
    attributes = " ".join(item.attributes)
    name = responses.mailbox_name(item.name).decode("ascii")
    extra = ' ("CHILDINFO" ("SUBSCRIBED"))' if item.child_info else ""
    return responses.untagged(f'{command} ({attributes}) "{SEPARATOR}" {name}{extra}')


def lsub_mailboxes(
    mailboxes: Sequence[MailboxInfo], *, reference: str, pattern: str
) -> list[ListedMailbox]:
    """LSUB: subscribed mailboxes matching the pattern (RFC 3501 §6.3.9)."""
    regex = pattern_regex(reference, pattern)
    return [
        ListedMailbox(mailbox.name, (), mailbox)
        for mailbox in sorted(mailboxes, key=lambda item: (item.name != "INBOX", item.name))
        if mailbox.subscribed and regex.fullmatch(mailbox.name)
    ]


def _has_children(name: str, names: set[str]) -> bool:
    prefix = name + SEPARATOR
    return any(other.startswith(prefix) for other in names)


def _has_subscribed_child(name: str, mailboxes: Sequence[MailboxInfo]) -> bool:
    prefix = name + SEPARATOR
    return any(m.subscribed and m.name.startswith(prefix) for m in mailboxes)
