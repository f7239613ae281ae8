"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 7162 §3.1.5 MODSEQ)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from gateway.imap.protocol._arguments import read_search_date
from gateway.imap.protocol._lexer import (
    DIGITS,
    DQUOTE,
    LPAREN,
    MAX_NUMBER,
    ParseError,
    Reader,
    decode_text,
)
from gateway.imap.protocol.commands import Search
from gateway.imap.protocol.search_keys import (
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
)

# Parentheses, NOT and OR each nest one level; deeper trees are refused before they can
# exhaust the stack (no real client nests more than a handful).
MAX_SEARCH_DEPTH: Final = 64

# Charsets whose search strings we can decode, mapped to Python codec names. RFC 3501
# §6.4.4: US-ASCII and UTF-8 are required; an unknown charset is NO [BADCHARSET].
_CHARSETS: Final = {
    "US-ASCII": "utf-8",  # 8-bit text labelled US-ASCII is common; UTF-8 is its superset
    "UTF-8": "utf-8",
    **{f"ISO-8859-{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)},
    **{f"WINDOWS-{n}": f"cp{n}" for n in range(1250, 1259)},
    "KOI8-R": "koi8-r",
    "KOI8-U": "koi8-u",
}
BADCHARSET_CODE: Final = "BADCHARSET (US-ASCII UTF-8)"

# RFC 4731 §3.1 return options (SAVE, RFC 5182, is not offered).
_RETURN_OPTIONS: Final = frozenset({"MIN", "MAX", "ALL", "COUNT"})

_FLAG_KEYS: Final[dict[str, SearchKey]] = {
    "ANSWERED": SearchFlag("\\Answered"),
    "DELETED": SearchFlag("\\Deleted"),
    "DRAFT": SearchFlag("\\Draft"),
    "FLAGGED": SearchFlag("\\Flagged"),
    "SEEN": SearchFlag("\\Seen"),
    "RECENT": SearchFlag("\\Recent"),
    "OLD": SearchFlag("\\Recent", present=False),
    "UNANSWERED": SearchFlag("\\Answered", present=False),
    "UNDELETED": SearchFlag("\\Deleted", present=False),
    "UNDRAFT": SearchFlag("\\Draft", present=False),
    "UNFLAGGED": SearchFlag("\\Flagged", present=False),
    "UNSEEN": SearchFlag("\\Seen", present=False),
    "ALL": SearchAll(),
    # RFC 3501 §6.4.4: NEW is equivalent to (RECENT UNSEEN).
    "NEW": SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", present=False))),
}
_HEADER_KEYS: Final = frozenset({"BCC", "CC", "FROM", "SUBJECT", "TO"})
_DateKind = tuple[Literal["internal", "sent"], Literal["before", "on", "since"]]
_DATE_KEYS: Final[dict[str, _DateKind]] = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
}
_MODSEQ_ENTRY_TYPES: Final = frozenset({"PRIV", "SHARED", "ALL"})


class _SearchReader:
    """Reads search keys, decoding strings with the command's CHARSET."""

    def __init__(self, reader: Reader, encoding: str) -> None:
        self._reader = reader
        self._encoding = encoding
        self._handlers: dict[str, Callable[[int], SearchKey]] = {
            "BODY": lambda _: SearchBody(self._read_string()),
            "TEXT": lambda _: SearchText(self._read_string()),
            "HEADER": self._read_header,
            "KEYWORD": lambda _: SearchFlag(self._read_keyword_flag()),
            "UNKEYWORD": lambda _: SearchFlag(self._read_keyword_flag(), present=False),
            "LARGER": lambda _: SearchSize("larger", self._read_size()),
            "SMALLER": lambda _: SearchSize("smaller", self._read_size()),
            "NOT": lambda depth: SearchNot(self._read_argument_key(depth)),
            "OR": self._read_or,
            "UID": self._read_uid,
            "MODSEQ": self._read_modseq,
        }

    def _read_string(self) -> str:
        self._reader.expect_space()
        return decode_text(self._reader.read_astring("search string"), self._encoding)

    def _read_header(self, depth: int) -> SearchKey:
        field = self._read_string()
        return SearchHeader(field.upper(), self._read_string())

    def _read_keyword_flag(self) -> str:
        self._reader.expect_space()
        return self._reader.read_atom("keyword")  # RFC 3501 §9: flag-keyword = atom

    def _read_size(self) -> int:
        self._reader.expect_space()
        return self._reader.read_number(maximum=MAX_NUMBER, what="size")

    def _read_argument_key(self, depth: int) -> SearchKey:
        self._reader.expect_space()
        return self.read_key(depth + 1)

    def _read_or(self, depth: int) -> SearchKey:
        left = self._read_argument_key(depth)
        return SearchOr(left, self._read_argument_key(depth))

    def _read_uid(self, depth: int) -> SearchKey:
        self._reader.expect_space()
        return SearchSequence(self._reader.read_sequence_set(), uid=True)

    def _read_modseq(self, depth: int) -> SearchKey:
        # RFC 7162 §3.1.5: MODSEQ [entry-name SP entry-type-req SP] mod-sequence-valzer.
        reader = self._reader
        reader.expect_space()
        if reader.peek() == DQUOTE:
            reader.read_quoted()
            reader.expect_space()
            if reader.read_keyword("entry type") not in _MODSEQ_ENTRY_TYPES:
                raise ParseError("bad MODSEQ entry type")
            reader.expect_space()
        return SearchModSeq(reader.read_modseq(allow_zero=True))

    def read_key(self, depth: int) -> SearchKey:
        """One search-key (RFC 3501 §9)."""
        if depth > MAX_SEARCH_DEPTH:
            raise ParseError("search criteria nested too deeply")
        reader = self._reader
        next_byte = reader.peek()
        if next_byte == LPAREN:
            return SearchAnd(
                tuple(
                    reader.read_parenthesised(
                        lambda: self.read_key(depth + 1), what="search criteria"
                    )
                )
            )
        if next_byte is not None and (next_byte in DIGITS or next_byte == ord("*")):
            return SearchSequence(reader.read_sequence_set(), uid=False)
        name = reader.read_keyword("search key")
        if name in _FLAG_KEYS:
            return _FLAG_KEYS[name]
        if name in _HEADER_KEYS:
            return SearchHeader(name, self._read_string())
        if name in _DATE_KEYS:
            field, relation = _DATE_KEYS[name]
            reader.expect_space()
            return SearchDate(field, relation, read_search_date(reader))
        handler = self._handlers.get(name)
        if handler is None:
            raise ParseError(f"unknown search key {name}")
        return handler(depth)


def _read_return_options(reader: Reader) -> tuple[str, ...]:
    reader.expect_space()

    def read_option() -> str:
        option = reader.read_keyword("return option")
        if option not in _RETURN_OPTIONS:
            raise ParseError(f"unknown SEARCH return option {option}")
        return option

    return tuple(reader.read_parenthesised(read_option, allow_empty=True, what="return options"))


def parse_search(reader: Reader, tag: str, uid: bool) -> Search:
    """`[UID] SEARCH [RETURN (...)] [CHARSET x] key *(SP key)`."""
    reader.expect_space()
    return_options: tuple[str, ...] | None = None
    charset: str | None = None
    if reader.peek_keyword() == "RETURN":
        reader.read_keyword()
        return_options = _read_return_options(reader)
        reader.expect_space()
    if reader.peek_keyword() == "CHARSET":
        reader.read_keyword()
        reader.expect_space()
        charset = decode_text(reader.read_astring("charset")).upper()
        if charset not in _CHARSETS:
            raise ParseError(f"unsupported charset {charset}", status="NO", code=BADCHARSET_CODE)
        reader.expect_space()
    keys = _SearchReader(reader, _CHARSETS[charset or "UTF-8"])
    criteria = [keys.read_key(1)]
    while reader.skip_byte(0x20):
        criteria.append(keys.read_key(1))
    reader.expect_end()
    return Search(
        tag,
        uid=uid,
        criteria=SearchAnd(tuple(criteria)),
        charset=charset,
        return_options=return_options,
    )
