"""Address-list parsing for ENVELOPE (RFC 5322 §3.4, RFC 3501 §7.4.2), Dovecot-compatible.

Mirrors lib-mail/message-address.c of Dovecot 2.3 with MESSAGE_ADDRESS_PARSE_FLAG_FILL_MISSING:
broken addresses are still listed, with MISSING_MAILBOX / MISSING_DOMAIN / SYNTAX_ERROR filling
the gaps, and a group becomes a start marker (NIL NIL name NIL) and an end marker (NIL NIL NIL
NIL).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mime.imap_quote import nstring, string_for_humans
from gateway.mime.rfc822_lexer import NUL_REPLACEMENT, Rfc822Lexer, is_atext

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"


@dataclass
class Address:
    """One ENVELOPE address structure; all None marks a group's end (RFC 3501 §7.4.2)."""

    name: bytes | None = None
    route: bytes | None = None
    mailbox: bytes | None = None
    domain: bytes | None = None
    invalid: bool = False


class _AddressParser:
    def __init__(self, value: bytes) -> None:
        self.lexer = Rfc822Lexer(value, keep_comment=True)
        self.lexer.nul_replacement = NUL_REPLACEMENT
        self.result: list[Address] = []
        self.addr = Address()

    # -- helpers mirroring Dovecot's context operations -------------------------------------

    def add_address(self) -> None:
        self.result.append(self.addr)
        self.addr = Address()

    def add_fixed_address(self) -> None:
        if self.addr.mailbox is None:
            self.addr.mailbox = MISSING_MAILBOX
            self.addr.invalid = True
        if not self.addr.domain:
            self.addr.domain = MISSING_DOMAIN
            self.addr.invalid = True
        self.add_address()

    def _at(self, octet: int) -> bool:
        return self.lexer.peek() == octet

    # -- grammar ---------------------------------------------------------------------------

    def parse_nonstrict_dot_atom(self, out: bytearray) -> int:
        # Real-world local parts like "a..b." are accepted (Dovecot's non-strict dots).
        lexer = self.lexer
        ret = -1
        while True:
            while lexer.peek() == 0x2E:
                out.append(0x2E)
                lexer.pos += 1
                if lexer.pos >= lexer.end:
                    return 0
                ret = 1
            if lexer.peek() == 0x40:
                break
            ret = lexer.parse_atom(out)
            if not (ret > 0 and lexer.peek() == 0x2E):
                break
        return ret

    def parse_local_part(self) -> tuple[int, bytearray]:
        out = bytearray()
        if self._at(0x22):
            ret = self.lexer.parse_quoted_string(out)
        else:
            ret = self.parse_nonstrict_dot_atom(out)
        if ret < 0:
            return -1, out
        self.addr.mailbox = bytes(out)
        return ret, out

    def parse_domain(self) -> int:
        out = bytearray()
        ret = self.lexer.parse_domain(out)
        if ret < 0:
            return -1
        self.addr.domain = bytes(out)
        return ret

    def parse_domain_list(self) -> int:
        # RFC 5322 §4.4 obs-domain-list: "@a,@b" before the ":" of an obsolete route.
        lexer = self.lexer
        out = bytearray()
        while True:
            if lexer.pos >= lexer.end:
                return 0
            if lexer.peek() != 0x40:
                break
            if out:
                out.append(0x2C)
            out.append(0x40)
            ret = lexer.parse_domain(out)
            if ret <= 0:
                return ret
            while lexer.skip_lwsp() > 0 and lexer.peek() == 0x2C:
                lexer.pos += 1
        self.addr.route = bytes(out)
        return 1

    def parse_angle_addr(self) -> int:
        lexer = self.lexer
        lexer.pos += 1
        if lexer.skip_lwsp() <= 0:
            return -1
        if lexer.peek() == 0x40:
            if self.parse_domain_list() > 0 and lexer.peek() == 0x3A:
                lexer.pos += 1
            else:
                self.addr.route = b"INVALID_ROUTE"
                if lexer.pos >= lexer.end:
                    return -1
            if lexer.skip_lwsp() <= 0:
                return -1
        if lexer.peek() != 0x3E:
            if self.parse_local_part()[0] <= 0:
                return -1
            if lexer.peek() == 0x40 and self.parse_domain() <= 0:
                return -1
        if lexer.peek() != 0x3E:
            return -1
        lexer.pos += 1
        return lexer.skip_lwsp()

    def parse_name_addr(self) -> int:
        out = bytearray()
        if self.lexer.parse_phrase(out) <= 0 or not self._at(0x3C):
            return -1
        self.addr.name = bytes(out) or None
        if self.parse_angle_addr() < 0:
            self.addr.domain = b"SYNTAX_ERROR"
            self.addr.invalid = True
        return 1 if self.lexer.pos < self.lexer.end else 0

    def parse_addr_spec(self) -> int:
        lexer = self.lexer
        assert lexer.last_comment is not None  # noqa: S101 - set in __init__
        del lexer.last_comment[:]
        quoted = self._at(0x22)
        ret, local = self.parse_local_part()
        ret2 = -2
        if ret <= 0:
            self.addr.invalid = True
        if ret != 0 and lexer.pos < lexer.end and lexer.peek() == 0x40:
            ret2 = self.parse_domain()
            if ret2 <= 0:
                ret = ret2
        if lexer.last_comment:
            self.addr.name = bytes(lexer.last_comment)
        elif ret2 == -2:
            # "Foo Bar" without any "@": Dovecot reads the rest as a display name.
            local.append(0x20)
            before = len(local)
            lexer.parse_phrase(local)
            if len(local) != before:
                self.addr.mailbox = None
                self.addr.name = bytes(local)
            elif not quoted:
                self.addr.domain = b""
            self.addr.invalid = True
            ret = -1
        return ret

    def parse_mailbox(self) -> int:
        start = self.lexer.pos
        ret = self.parse_name_addr()
        if ret < 0:
            self.lexer.pos = start
            ret = self.parse_addr_spec()
            addr = self.addr
            if (
                addr.invalid
                and addr.name is None
                and addr.mailbox is not None
                and (addr.domain is None)
            ):
                addr.name, addr.mailbox = addr.mailbox, None
        if ret < 0:
            self.addr.invalid = True
        self.add_fixed_address()
        return ret

    def parse_group(self) -> int:
        lexer = self.lexer
        name = bytearray()
        if lexer.parse_phrase(name) <= 0 or not self._at(0x3A):
            return -1
        lexer.pos += 1
        ret = lexer.skip_lwsp()
        if ret <= 0:
            self.addr.invalid = True
        self.addr.mailbox = bytes(name)
        self.add_address()
        if ret > 0 and not self._at(0x3B):
            while True:
                self.parse_mailbox()
                if lexer.pos >= lexer.end or lexer.peek() != 0x2C:
                    break
                lexer.pos += 1
                if lexer.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if lexer.pos >= lexer.end or lexer.peek() != 0x3B:
                ret = -1
            else:
                lexer.pos += 1
                ret = lexer.skip_lwsp()
        if ret < 0:
            self.addr.invalid = True
        self.add_address()
        return 0 if ret == 0 else 1

    def parse_address(self) -> int:
        start = self.lexer.pos
        ret = self.parse_group()
        if ret < 0:
            self.lexer.pos = start
            # a failed group attempt may have touched the pending address
            self.addr = Address()
            ret = self.parse_mailbox()
        return ret

    def parse_address_list(self) -> None:
        lexer = self.lexer
        while True:
            if self.parse_address() == 0:
                break
            if lexer.pos >= lexer.end or lexer.peek() != 0x2C:
                break
            lexer.pos += 1
            ret = lexer.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed_address()
                break

    def parse(self) -> list[Address]:
        if self.lexer.skip_lwsp() <= 0:
            return []
        self.parse_address_list()
        return self.result


def parse_address_list(value: bytes) -> list[Address]:
    """Parse an address header value; an empty list means the header holds no address."""
    return _AddressParser(value).parse()


def render_address_list(addresses: list[Address] | None) -> bytes:
    """ENVELOPE address list: NIL or ((name route mailbox domain)...)."""
    if not addresses:
        return b"NIL"
    out = [b"("]
    for addr in addresses:
        name = b"NIL" if addr.name is None else string_for_humans(addr.name)
        out.append(
            b"("
            + name
            + b" "
            + nstring(addr.route)
            + b" "
            + nstring(addr.mailbox)
            + b" "
            + nstring(addr.domain)
            + b")"
        )
    out.append(b")")
    return b"".join(out)


def format_addresses(addresses: list[Address]) -> bytes:
    """A readable one-line form ("Name <box@domain>, ...") for search fields."""
    items: list[bytes] = []
    for addr in addresses:
        if addr.domain is None:
            if addr.mailbox is not None:
                items.append(addr.mailbox + b":")
            continue
        mailbox = addr.mailbox or b""
        spec = mailbox + b"@" + addr.domain
        items.append(addr.name + b" <" + spec + b">" if addr.name else spec)
    return b", ".join(items)


__all__ = ["Address", "format_addresses", "is_atext", "parse_address_list", "render_address_list"]
