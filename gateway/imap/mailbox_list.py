"""LIST/LSUB matching and attributes (RFC 3501 §6.3.8, RFC 5258, RFC 6154, RFC 3348)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.imap.list_pattern import SEPARATOR, compile_pattern
from gateway.imap.protocol import responses
from gateway.store.views import MailboxInfo


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
    compiled = [compile_pattern(reference, pattern) for pattern in patterns]
    parents = _parent_names(mailboxes)
    subscribed_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in return_options
    listed: list[ListedMailbox] = []
    for mailbox in sorted(mailboxes, key=lambda item: (item.name != "INBOX", item.name)):
        if not any(pattern.matches(mailbox.name) for pattern in compiled):
            continue
        if special_only and not mailbox.special_use:
            continue
        attributes = ["\\HasChildren" if mailbox.name in parents else "\\HasNoChildren"]
        if mailbox.noselect:
            attributes.append("\\Noselect")  # RFC 3501 §6.3.4: deleted, inferiors remain
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
    compiled = compile_pattern(reference, pattern)
    return [
        ListedMailbox(mailbox.name, (), mailbox)
        for mailbox in sorted(mailboxes, key=lambda item: (item.name != "INBOX", item.name))
        if mailbox.subscribed and compiled.matches(mailbox.name)
    ]


def _parent_names(mailboxes: Sequence[MailboxInfo]) -> set[str]:
    """Every name that has an inferior: linear in the names, not quadratic."""
    parents: set[str] = set()
    for mailbox in mailboxes:
        name = mailbox.name
        while (cut := name.rfind(SEPARATOR)) > 0:
            name = name[:cut]
            if name in parents:
                break
            parents.add(name)
    return parents


def _has_subscribed_child(name: str, mailboxes: Sequence[MailboxInfo]) -> bool:
    prefix = name + SEPARATOR
    return any(m.subscribed and m.name.startswith(prefix) for m in mailboxes)
