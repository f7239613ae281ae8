"""LIST/LSUB matching and attributes (RFC 3501 §6.3.8, RFC 5258, RFC 6154, RFC 3348)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from gateway.imap.list_pattern import SEPARATOR, MailboxPattern, compile_pattern
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
    compiled = [compile_pattern(reference, pattern) for pattern in patterns]
    by_name = {mailbox.name: mailbox for mailbox in mailboxes}
    parents = _parent_names(by_name)
    subscribed = set(subscriptions)
    subscribed_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in return_options
    with_child_info = (
        _parents_of_unmatched(subscribed, compiled) if "RECURSIVEMATCH" in selection else set()
    )
    candidates = set(by_name) | subscribed if subscribed_only else set(by_name)
    listed: list[ListedMailbox] = []
    for name in sorted(candidates, key=lambda item: (item != "INBOX", item)):
        if not _matches(compiled, name):
            continue
        mailbox = by_name.get(name)
        if special_only and (mailbox is None or not mailbox.special_use):
            continue
        child_info = name in with_child_info
        if subscribed_only and name not in subscribed and not child_info:
            continue
        if mailbox is None:
            # RFC 5258 §3.4: \NonExistent implies \Noselect and says no more.
            attributes = ["\\NonExistent"]
        else:
            attributes = ["\\HasChildren" if name in parents else "\\HasNoChildren"]
            if mailbox.noselect:
                attributes.append("\\Noselect")  # RFC 3501 §6.3.4: deleted, inferiors remain
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
    compiled = compile_pattern(reference, pattern)
    by_name = {mailbox.name: mailbox for mailbox in mailboxes}
    listed: dict[str, ListedMailbox] = {}
    for name in subscriptions:
        if compiled.matches(name):
            listed[name] = ListedMailbox(name, (), by_name.get(name))
            continue
        for parent in _ancestors(name):
            if parent not in subscriptions and compiled.matches(parent):
                listed.setdefault(parent, ListedMailbox(parent, ("\\Noselect",), None))
                break
    return [listed[name] for name in sorted(listed, key=lambda item: (item != "INBOX", item))]


def _matches(compiled: Sequence[MailboxPattern], name: str) -> bool:
    return any(pattern.matches(name) for pattern in compiled)


def _ancestors(name: str) -> Iterable[str]:
    """`a/b/c` -> `a/b`, `a`: nearest first."""
    while (cut := name.rfind(SEPARATOR)) > 0:
        name = name[:cut]
        yield name


def _parent_names(names: Iterable[str]) -> set[str]:
    """Every name that has an inferior: linear in the names, not quadratic."""
    parents: set[str] = set()
    for name in names:
        for parent in _ancestors(name):
            if parent in parents:
                break
            parents.add(parent)
    return parents


def _parents_of_unmatched(
    subscribed: Iterable[str], compiled: Sequence[MailboxPattern]
) -> set[str]:
    """Names with a subscribed descendant the patterns do not reach (RECURSIVEMATCH)."""
    found: set[str] = set()
    for name in subscribed:
        if not _matches(compiled, name):
            found.update(_ancestors(name))
    return found
