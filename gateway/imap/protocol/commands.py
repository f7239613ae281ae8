"""Every command a client can send, as frozen dataclasses the parser produces.

Mailbox names are already decoded from modified UTF-7 (RFC 3501 §5.1.3) to Unicode; `INBOX`
in any case is spelled "INBOX". Strings are `str` (UTF-8 decoded); message literals are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.imap.protocol.fetch_items import FetchAttribute
from gateway.imap.protocol.search_keys import SearchKey
from gateway.imap.protocol.sequence import SequenceSet


@dataclass(frozen=True)
class Command:
    tag: str


# --- any state (RFC 3501 §6.1) -------------------------------------------------------------


@dataclass(frozen=True)
class Capability(Command):
    pass


@dataclass(frozen=True)
class Noop(Command):
    pass


@dataclass(frozen=True)
class Logout(Command):
    pass


@dataclass(frozen=True)
class Id(Command):
    """RFC 2971; `parameters` is None for `ID NIL`."""

    parameters: tuple[tuple[str, str | None], ...] | None


# --- not authenticated (§6.2) ----------------------------------------------------------------


@dataclass(frozen=True)
class StartTls(Command):
    pass


@dataclass(frozen=True)
class Authenticate(Command):
    """`mechanism` upper-cased; `initial_response` is the SASL-IR argument, base64-decoded
    (b"" for "="), None when absent (RFC 4959)."""

    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True)
class Login(Command):
    username: str
    password: str


# --- authenticated (§6.3) --------------------------------------------------------------------


@dataclass(frozen=True)
class QResyncParameters:
    """SELECT (QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])), RFC 7162 §3.2.5."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    sequence_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True)
class Select(Command):
    """SELECT, or EXAMINE when `read_only`; CONDSTORE/QRESYNC select parameters."""

    mailbox: str
    read_only: bool = False
    condstore: bool = False
    qresync: QResyncParameters | None = None


@dataclass(frozen=True)
class Create(Command):
    mailbox: str
    # RFC 6154 §3: CREATE name (USE (\Sent)); empty when not given.
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delete(Command):
    mailbox: str


@dataclass(frozen=True)
class Rename(Command):
    mailbox: str
    new_mailbox: str


@dataclass(frozen=True)
class Subscribe(Command):
    mailbox: str


@dataclass(frozen=True)
class Unsubscribe(Command):
    mailbox: str


@dataclass(frozen=True)
class List(Command):
    """LIST, with RFC 5258 LIST-EXTENDED and RFC 5819 LIST-STATUS options.

    `reference` and `patterns` are decoded mailbox names (patterns keep `*` and `%`).
    `selection` holds upper-cased selection options (SUBSCRIBED, REMOTE, RECURSIVEMATCH,
    SPECIAL-USE); `return_options` upper-cased return options other than STATUS (SUBSCRIBED,
    CHILDREN, SPECIAL-USE); `status_items` the STATUS items of RETURN (STATUS (...)), or None.
    """

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    return_options: frozenset[str] = frozenset()
    status_items: tuple[str, ...] | None = None
    extended: bool = False  # True when the extended syntax was used (affects response shape)


@dataclass(frozen=True)
class Lsub(Command):
    reference: str
    pattern: str


@dataclass(frozen=True)
class Namespace(Command):
    pass


StatusItem = Literal[
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE"
]


@dataclass(frozen=True)
class Status(Command):
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True)
class Append(Command):
    """APPEND mailbox [flags] [date-time] literal (RFC 3501 §6.3.11)."""

    mailbox: str
    flags: tuple[str, ...]
    internal_date: datetime | None
    message: bytes


@dataclass(frozen=True)
class Enable(Command):
    """RFC 5161; capability names upper-cased."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Idle(Command):
    """RFC 2177: the session answers `+ idling` and reads one line, which must be DONE."""


@dataclass(frozen=True)
class Compress(Command):
    """RFC 4978 COMPRESS DEFLATE; mechanism upper-cased."""

    mechanism: str


# --- selected (§6.4) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Check(Command):
    pass


@dataclass(frozen=True)
class Close(Command):
    pass


@dataclass(frozen=True)
class Unselect(Command):
    """RFC 3691."""


@dataclass(frozen=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE set (RFC 4315 §2.1) when `uid_set` is given."""

    uid_set: SequenceSet | None = None


@dataclass(frozen=True)
class Search(Command):
    """[UID] SEARCH [RETURN (...)] [CHARSET x] criteria.

    `charset` is upper-cased, None when absent. `return_options` is None for a plain SEARCH
    and a tuple of upper-cased ESEARCH options (MIN MAX ALL COUNT; empty means ALL) for
    RFC 4731 `SEARCH RETURN (...)`.
    """

    uid: bool
    criteria: SearchKey
    charset: str | None = None
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Fetch(Command):
    """[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])] (RFC 7162 §3.1.4.1, §3.2.6)."""

    uid: bool
    sequence_set: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    changed_since: int | None = None
    vanished: bool = False


StoreMode = Literal["replace", "add", "remove"]


@dataclass(frozen=True)
class Store(Command):
    """[UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] (flags)."""

    uid: bool
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True)
class Copy(Command):
    uid: bool
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True)
class Move(Command):
    """RFC 6851."""

    uid: bool
    sequence_set: SequenceSet
    mailbox: str
