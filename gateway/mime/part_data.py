"""Per-part MIME data (RFC 2045/2183/3282/2557/1864 headers) and ENVELOPE fields.

Follows Dovecot's lib-mail/message-part-data.c: the first Content-Type, -Transfer-Encoding,
-ID, -Description, -MD5, -Language and -Location win, Content-Disposition is re-read while it
has no parameters, and for ENVELOPE (RFC 3501 §7.4.2) the last occurrence of a string field
wins while the addresses of repeated address fields are joined into one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.mime.addresses import Address, parse_address_list, render_address_list
from gateway.mime.header_fields import header_strdup
from gateway.mime.imap_quote import nstring_nolf, string_for_humans
from gateway.mime.parameters import parse_parameters
from gateway.mime.rfc822_lexer import Rfc822Lexer


@dataclass
class PartData:
    """What BODYSTRUCTURE says about one part; None means the header was absent."""

    content_type: bytes | None = None
    content_subtype: bytes | None = None
    content_type_params: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_id: bytes | None = None
    content_description: bytes | None = None
    content_transfer_encoding: bytes | None = None
    content_md5: bytes | None = None
    content_disposition: bytes | None = None
    content_disposition_params: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_language: list[bytes] | None = None
    content_location: bytes | None = None

    def apply_header(self, name: bytes, value: bytes) -> None:
        """Update from one ``Content-*`` header field (name compared case-insensitively)."""
        key = name.lower()
        if key == b"content-type" and self.content_type is None:
            self._parse_content_type(value)
        elif key == b"content-transfer-encoding" and self.content_transfer_encoding is None:
            lexer = Rfc822Lexer(value)
            lexer.skip_lwsp()
            token = bytearray()
            # RFC 2045 §6.1: a single token; anything after it makes the header invalid.
            if lexer.parse_mime_token(token) >= 0 and lexer.skip_lwsp() == 0 and token:
                self.content_transfer_encoding = bytes(token)
        elif key == b"content-id" and self.content_id is None:
            self.content_id = header_strdup(value)
        elif key == b"content-description" and self.content_description is None:
            self.content_description = header_strdup(value)
        elif key == b"content-md5" and self.content_md5 is None:
            self.content_md5 = header_strdup(value)
        elif key == b"content-location" and self.content_location is None:
            self.content_location = header_strdup(value)
        elif key == b"content-language" and self.content_language is None:
            self._parse_content_language(value)
        elif key == b"content-disposition" and not self.content_disposition_params:
            lexer = Rfc822Lexer(value)
            lexer.skip_lwsp()
            token = bytearray()
            if lexer.parse_mime_token(token) < 0:
                return
            self.content_disposition = bytes(token)
            self.content_disposition_params = parse_parameters(lexer)

    def _parse_content_type(self, value: bytes) -> None:
        lexer = Rfc822Lexer(value)
        lexer.skip_lwsp()
        out = bytearray()
        ret = lexer.parse_content_type(out)
        type_, slash, subtype = bytes(out).partition(b"/")
        self.content_type = type_
        # A broken value still yields its type with an empty subtype, so that the part is
        # not silently reported as text/plain.
        self.content_subtype = subtype if slash else b""
        if ret >= 0:
            self.content_type_params = parse_parameters(lexer)

    def _parse_content_language(self, value: bytes) -> None:
        # RFC 3282: 1#Language-tag; Dovecot stops at the first thing that is not an atom.
        lexer = Rfc822Lexer(value)
        lexer.skip_lwsp()
        languages: list[bytes] = []
        while True:
            atom = bytearray()
            if lexer.parse_atom(atom) < 0:
                break
            languages.append(bytes(atom))
            if lexer.pos >= lexer.end or lexer.peek() != 0x2C:
                break
            lexer.pos += 1
            lexer.skip_lwsp()
        if languages:
            self.content_language = languages

    @property
    def is_text(self) -> bool:
        return self.content_type is None or self.content_type.lower() == b"text"

    def charset(self) -> str | None:
        for key, value in self.content_type_params:
            if key.lower() == b"charset":
                return value.decode("ascii", "replace")
        return None


_ENVELOPE_STRINGS = {b"date", b"subject", b"in-reply-to", b"message-id"}
_ENVELOPE_ADDRESSES = {b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"}


@dataclass
class EnvelopeData:
    """Raw ENVELOPE inputs; RFC 2047 words stay encoded (RFC 3501 §7.4.2)."""

    strings: dict[bytes, bytes] = field(default_factory=dict)
    addresses: dict[bytes, list[Address]] = field(default_factory=dict)
    # The last occurrence of each address field with its parse, for the search columns.
    last_addresses: dict[bytes, tuple[bytes, list[Address]]] = field(default_factory=dict)

    def apply_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key in _ENVELOPE_STRINGS:
            self.strings[key] = header_strdup(value)
        elif key in _ENVELOPE_ADDRESSES:
            # Unlike the string fields, a repeated address field adds to the list (Dovecot).
            parsed = parse_address_list(value)
            self.addresses.setdefault(key, []).extend(parsed)
            self.last_addresses[key] = (value, parsed)

    def render(self) -> bytes:
        """The ENVELOPE list contents, without the outer parentheses."""
        strings = self.strings
        subject = strings.get(b"subject")
        from_ = self.addresses.get(b"from")
        # RFC 3501 §7.4.2: sender and reply-to default to from.  An empty header counts as
        # absent here, as in Dovecot (it parses to no addresses).
        sender = self.addresses.get(b"sender") or from_
        reply_to = self.addresses.get(b"reply-to") or from_
        fields = [
            nstring_nolf(strings.get(b"date")),
            b"NIL" if subject is None else string_for_humans(subject),
            render_address_list(from_),
            render_address_list(sender),
            render_address_list(reply_to),
            render_address_list(self.addresses.get(b"to")),
            render_address_list(self.addresses.get(b"cc")),
            render_address_list(self.addresses.get(b"bcc")),
            nstring_nolf(strings.get(b"in-reply-to")),
            nstring_nolf(strings.get(b"message-id")),
        ]
        return b" ".join(fields)


EMPTY_ENVELOPE = b"NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL"
