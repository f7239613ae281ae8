"""FETCH data items (RFC 3501 §6.4.5) as the parser builds them; macros are already expanded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Simple items carry no section. "BODY" without a section is the non-extensible BODYSTRUCTURE.
SimpleItem = Literal[
    "UID",
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "MODSEQ",  # RFC 7162 §3.1.4
    "RFC822",  # == BODY[] but sets \Seen and answers as RFC822
    "RFC822.HEADER",  # == BODY.PEEK[HEADER], answers as RFC822.HEADER
    "RFC822.TEXT",  # == BODY[TEXT], sets \Seen, answers as RFC822.TEXT
]

SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


@dataclass(frozen=True)
class Section:
    """`BODY[<part>.<text>]`: part numbers (empty: the whole message) and an optional text spec.

    `header_fields` holds the field names of HEADER.FIELDS[.NOT] as the client spelled them
    (responses echo them back, upper-cased as Dovecot does).
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    header_fields: tuple[str, ...] = ()

    def spec(self) -> bytes:
        """The section as a FETCH response names it: `1.2.HEADER.FIELDS (FROM TO)`."""
        pieces = [b"%d" % number for number in self.part]
        if self.text is not None:
            pieces.append(self.text.encode("ascii"))
        spec = b".".join(pieces)
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            names = b" ".join(_field_name(name) for name in self.header_fields)
            spec += b" (" + names + b")"
        return spec


@dataclass(frozen=True)
class FetchAttribute:
    """One FETCH item.

    For `BODY[...]`/`BODY.PEEK[...]` (and `BINARY` is not offered) `name` is "BODY[]" and
    `section` is set; `peek` is True for BODY.PEEK, RFC822.HEADER and the tolerated Outlook
    `RFC822.PEEK` (which parses as name "RFC822", peek=True). `partial` is `<origin.count>`.
    """

    name: SimpleItem | Literal["BODY[]"]
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    def response_name(self) -> bytes:
        """How the item is named in the FETCH response: `BODY[1.HEADER.FIELDS (FROM)]<0>`.

        RFC 3501 §7.4.2: the partial is echoed as its origin only; BODY.PEEK answers as BODY.
        """
        if self.section is None:
            # RFC822.PEEK (Outlook) parses as name "RFC822" with peek=True and answers as RFC822.
            return self.name.encode("ascii")
        name = b"BODY[" + self.section.spec() + b"]"
        if self.partial is not None:
            name += b"<%d>" % self.partial[0]
        return name

    @property
    def sets_seen(self) -> bool:
        """RFC 3501 §6.4.5: fetching BODY[...] (not PEEK), RFC822 or RFC822.TEXT sets \\Seen."""
        return not self.peek and self.name in ("BODY[]", "RFC822", "RFC822.TEXT")


# RFC 3501 §9 ATOM-CHAR: any CHAR except atom-specials (the wildcards and resp-specials too).
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')


def _field_name(name: str) -> bytes:
    """A header field name as Dovecot echoes it: upper-cased, an atom when it can be one.

    Dovecot also keeps a name quoted when the client quoted it; the parser does not record
    that, so `"FROM"` comes back as `FROM` (the same astring to any client).
    """
    data = name.encode("utf-8", "surrogateescape").upper()  # ASCII-only, like t_str_ucase()
    if data and all(0x20 < byte < 0x7F and byte not in _ATOM_SPECIALS for byte in data):
        return data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
