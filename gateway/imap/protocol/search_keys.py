"""The SEARCH criteria tree (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ), as the parser builds it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from gateway.imap.protocol.sequence import SequenceSet


@dataclass(frozen=True)
class SearchAll:
    """ALL; also what an empty AND means."""


@dataclass(frozen=True)
class SearchFlag:
    """SEEN/UNSEEN, ANSWERED, DELETED, DRAFT, FLAGGED (and UN-), KEYWORD/UNKEYWORD.

    `flag` is the IMAP name (`\\Seen`, or a keyword such as `$Junk`); `present` is False for
    the UN- forms. RECENT/NEW/OLD use `\\Recent`; NEW is And(Flag(\\Recent), Flag(\\Seen, False)).
    """

    flag: str
    present: bool = True


@dataclass(frozen=True)
class SearchHeader:
    """FROM/TO/CC/BCC/SUBJECT x (field is the upper-case header name) and HEADER field x.

    Matching is a case-insensitive substring; an empty value matches every message that has
    the field (RFC 3501 §6.4.4 HEADER).
    """

    field: str
    value: str


@dataclass(frozen=True)
class SearchBody:
    """BODY x: substring of the decoded body text."""

    value: str


@dataclass(frozen=True)
class SearchText:
    """TEXT x: substring of the header or the body."""

    value: str


@dataclass(frozen=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    field: Literal["internal", "sent"]
    relation: Literal["before", "on", "since"]
    day: date


@dataclass(frozen=True)
class SearchSize:
    """LARGER n / SMALLER n (RFC822.SIZE)."""

    relation: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True)
class SearchSequence:
    """A bare sequence set (message numbers) or UID set."""

    sequence_set: SequenceSet
    uid: bool


@dataclass(frozen=True)
class SearchModSeq:
    """MODSEQ n (RFC 7162 §3.1.5); entry-name/type are parsed and ignored (one per message)."""

    modseq: int


@dataclass(frozen=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True)
class SearchAnd:
    """A parenthesised list, or the top-level list of criteria."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchHeader
    | SearchBody
    | SearchText
    | SearchDate
    | SearchSize
    | SearchSequence
    | SearchModSeq
    | SearchNot
    | SearchOr
    | SearchAnd
)
