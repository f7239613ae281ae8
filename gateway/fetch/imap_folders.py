"""Which remote folders of an IMAP source are synced, and into which local mailbox each goes.

Pure: a LIST result in, a plan out. The source INBOX feeds the unified INBOX; its special
folders (RFC 6154 flags, else well-known names) feed the unified special folders; every other
folder appears under `<source name>/<folder>`. Virtual views that would duplicate mail
(Gmail's All Mail, Starred, Important) are not synced: their messages are in real folders.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

LOCAL_SEPARATOR = "/"
SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")
VIRTUAL_USES = frozenset({"\\all", "\\flagged", "\\important"})
_UNSELECTABLE = frozenset({"\\noselect", "\\nonexistent"})
# Names providers use for their special folders when they do not announce SPECIAL-USE.
WELL_KNOWN_NAMES: dict[str, str] = {
    "sent": "\\Sent",
    "sent items": "\\Sent",
    "sent messages": "\\Sent",
    "sent mail": "\\Sent",
    "gesendet": "\\Sent",
    "drafts": "\\Drafts",
    "draft": "\\Drafts",
    "entwürfe": "\\Drafts",
    "trash": "\\Trash",
    "deleted items": "\\Trash",
    "deleted messages": "\\Trash",
    "bin": "\\Trash",
    "papierkorb": "\\Trash",
    "junk": "\\Junk",
    "spam": "\\Junk",
    "junk e-mail": "\\Junk",
    "junk email": "\\Junk",
    "bulk mail": "\\Junk",
    "archive": "\\Archive",
    "archives": "\\Archive",
}


@dataclass(frozen=True)
class RemoteFolder:
    """One LIST entry: name (decoded), hierarchy delimiter and attributes."""

    name: str
    delimiter: str | None
    attributes: frozenset[str]


@dataclass(frozen=True)
class FolderPlan:
    """A remote folder to sync: the local mailbox name, or the special use it feeds."""

    remote_name: str
    local_name: str
    special_use: str | None = None

    @property
    def is_inbox(self) -> bool:
        return self.remote_name.upper() == "INBOX"

    @property
    def owned_by_source(self) -> bool:
        """Fed by this source alone (`<source>/…`), unlike INBOX and the special folders
        every source shares: what a device files here belongs at the source too."""
        return not self.is_inbox and self.special_use is None


def plan_folders(
    folders: Iterable[RemoteFolder], *, source_name: str, chosen: Collection[str] | None = None
) -> list[FolderPlan]:
    """The folders to sync, INBOX first, each special use at most once."""
    selectable = [
        f
        for f in folders
        if not {a.lower() for a in f.attributes} & _UNSELECTABLE
        and (chosen is None or _is_chosen(f.name, chosen))
    ]
    plans: list[FolderPlan] = []
    taken_uses: set[str] = set()
    taken_names: set[str] = set()
    inbox = [f for f in selectable if f.name.upper() == "INBOX"]
    if inbox:
        plans.append(FolderPlan(inbox[0].name, "INBOX"))
    rest = [f for f in selectable if f.name.upper() != "INBOX"]
    rest = [f for f in rest if not {a.lower() for a in f.attributes} & VIRTUAL_USES]
    # Announced special uses win over guesses from names, whatever the LIST order.
    for folder in rest:
        use = _announced_use(folder)
        if use is not None and use not in taken_uses:
            taken_uses.add(use)
            plans.append(FolderPlan(folder.name, "", use))
    for folder in rest:
        if any(plan.remote_name == folder.name for plan in plans):
            continue
        use = _announced_use(folder) or _guessed_use(folder)
        if use is not None and use not in taken_uses:
            taken_uses.add(use)
            plans.append(FolderPlan(folder.name, "", use))
            continue
        local = _unused(local_folder_name(folder, source_name), taken_names)
        taken_names.add(local.lower())
        plans.append(FolderPlan(folder.name, local))
    return plans


def special_use_of(folder: RemoteFolder) -> str | None:
    """The folder's special use: announced (RFC 6154), else guessed from a well-known name."""
    return _announced_use(folder) or _guessed_use(folder)


def new_folder_name(name: str, listed: Iterable[RemoteFolder]) -> str:
    """Where to CREATE a top-level folder `name`: under `INBOX<delimiter>` on servers whose
    every folder lives there (Courier-style namespaces), else at the top."""
    others = [f for f in listed if f.name.upper() != "INBOX"]
    inbox = next((f for f in listed if f.name.upper() == "INBOX"), None)
    delimiter = inbox.delimiter if inbox is not None else None
    if delimiter and others and all(f.name.upper().startswith("INBOX" + delimiter) for f in others):
        return f"INBOX{delimiter}{name}"
    return name


def local_folder_name(folder: RemoteFolder, source_name: str) -> str:
    """`<source>/<path>`: the remote hierarchy kept, Courier-style `INBOX.` prefix dropped."""
    parts = folder.name.split(folder.delimiter) if folder.delimiter else [folder.name]
    if len(parts) > 1 and parts[0].upper() == "INBOX":
        parts = parts[1:]
    cleaned = [_clean(part) for part in parts if part]
    return LOCAL_SEPARATOR.join([_clean(source_name), *cleaned])


def _unused(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`…: two remote folders never feed one local mailbox."""
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _clean(part: str) -> str:
    # Our separator inside a remote name component would invent a hierarchy level.
    return part.replace(LOCAL_SEPARATOR, "_").strip() or "_"


def _is_chosen(name: str, chosen: Collection[str]) -> bool:
    if name.upper() == "INBOX":
        return any(c.upper() == "INBOX" for c in chosen)
    return name in chosen


def _announced_use(folder: RemoteFolder) -> str | None:
    lowered = {a.lower() for a in folder.attributes}
    for use in SPECIAL_USES:
        if use.lower() in lowered:
            return use
    return None


def _guessed_use(folder: RemoteFolder) -> str | None:
    parts = folder.name.split(folder.delimiter) if folder.delimiter else [folder.name]
    # Top level ("Sent"), or one level under INBOX or a provider container ("[Gmail]/Sent Mail").
    if len(parts) > 2:
        return None
    if len(parts) == 2 and not (parts[0].upper() == "INBOX" or parts[0].startswith("[")):
        return None
    return WELL_KNOWN_NAMES.get(parts[-1].strip().lower())
