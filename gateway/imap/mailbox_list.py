"""LIST/LSUB matching and attributes (RFC 3501 §6.3.8, RFC 5258, RFC 6154, RFC 3348)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
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
    subscriptions: Collection[str] = frozenset(),
    selection: frozenset[str] = frozenset(),
    return_options: frozenset[str] = frozenset(),
) -> list[ListedMailbox]:
    """The mailboxes a LIST answers with, in name order, each with its attributes.

    With the SUBSCRIBED selection option the subscribed names are listed, a deleted one as
    \\NonExistent (RFC 5258 §3.1); RECURSIVEMATCH adds a parent that matches the patterns
    when a subscribed descendant does not, with CHILDINFO (§3.5; Dovecot leaves out a parent
    whose subscribed descendants are listed themselves).
    """
    regexes = [pattern_regex(reference, pattern) for pattern in patterns]

    def matches(name: str) -> bool:
        return any(regex.fullmatch(name) for regex in regexes)

    by_name = {mailbox.name: mailbox for mailbox in mailboxes}
    subscribed = set(subscriptions)
    subscribed_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in return_options
    recursive = "RECURSIVEMATCH" in selection
    candidates = set(by_name) | subscribed if subscribed_only else set(by_name)
    listed: list[ListedMailbox] = []
    for name in sorted(candidates, key=lambda item: (item != "INBOX", item)):
        if not matches(name):
            continue
        mailbox = by_name.get(name)
        if special_only and (mailbox is None or not mailbox.special_use):
            continue
        child_info = recursive and any(
            other.startswith(name + SEPARATOR) and not matches(other) for other in subscribed
        )
        if subscribed_only and name not in subscribed and not child_info:
            continue
        if mailbox is None:
            # RFC 5258 §3.4: \NonExistent implies \Noselect and says no more.
            attributes = ["\\NonExistent"]
        else:
            has_children = _has_children(name, by_name)
            attributes = ["\\HasChildren" if has_children else "\\HasNoChildren"]
            if mailbox.special_use:
                attributes.append(mailbox.special_use)
        if show_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        listed.append(ListedMailbox(name, tuple(attributes), mailbox, child_info))
    return listed


def render_list(item: ListedMailbox, *, command: str = "LIST") -> bytes:
    attributes = " ".join(item.attributes)
    name = responses.mailbox_name(item.name).decode("ascii")
    extra = ' ("CHILDINFO" ("SUBSCRIBED"))' if item.child_info else ""
    return responses.untagged(f'{command} ({attributes}) "{SEPARATOR}" {name}{extra}')


def lsub_mailboxes(
    mailboxes: Sequence[MailboxInfo],
    *,
    reference: str,
    pattern: str,
    subscriptions: Collection[str],
) -> list[ListedMailbox]:
    """LSUB: subscribed names matching the pattern (RFC 3501 §6.3.9).

    When `%` stops at a level above a subscribed name, that unsubscribed parent is listed
    as \\Noselect, so the client can still descend to the subscribed mailbox below it.
    """
    regex = pattern_regex(reference, pattern)
    by_name = {mailbox.name: mailbox for mailbox in mailboxes}
    listed: dict[str, ListedMailbox] = {}
    for name in subscriptions:
        if regex.fullmatch(name):
            listed[name] = ListedMailbox(name, (), by_name.get(name))
            continue
        levels = name.split(SEPARATOR)
        for depth in range(len(levels) - 1, 0, -1):
            parent = SEPARATOR.join(levels[:depth])
            if parent not in subscriptions and regex.fullmatch(parent):
                listed.setdefault(parent, ListedMailbox(parent, ("\\Noselect",), None))
                break
    return [listed[name] for name in sorted(listed, key=lambda item: (item != "INBOX", item))]


def _has_children(name: str, names: Collection[str]) -> bool:
    prefix = name + SEPARATOR
    return any(other.startswith(prefix) for other in names)
