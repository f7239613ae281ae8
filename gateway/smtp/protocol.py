"""The one module that reaches into aiosmtpd beyond its documented hooks (tested with 1.4.6).

What it adds to `aiosmtpd.smtp.SMTP`:
- RFC 2034 enhanced status codes on every reply aiosmtpd composes itself (ours already carry
  them, `replies.py`); none in the greeting and the EHLO response, as §4 there says.
- Source routes (`<@relay:user@host>`, RFC 5321 §4.1.1.3 and appendix C) refused before
  aiosmtpd's parser silently drops the route.
"""

from __future__ import annotations

import re
from typing import AnyStr

from aiosmtpd.smtp import SMTP

from gateway.smtp import replies

_HAS_ENHANCED = re.compile(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?:\s|$)")
_GENERIC_DETAIL = {
    b"2": b"2.0.0",
    b"4": b"4.0.0",
    b"5": b"5.5.0",
}
# Codes whose meaning has a more exact enhanced code (RFC 3463 §3).
_SPECIFIC = {
    b"530": b"5.7.0",
    b"552": b"5.3.4",
    b"553": b"5.1.3",
    b"501": b"5.5.4",
    b"500": b"5.5.1",
    b"502": b"5.5.1",
    b"503": b"5.5.1",
    b"421": b"4.4.2",
    b"221": b"2.0.0",
}
_SOURCE_ROUTE = re.compile(r"<\s*@")


def with_enhanced_code(line: bytes) -> bytes:
    """`line` with an enhanced status code after its reply code, unless it has one or its
    code takes none (1xx/3xx continuations, 220 greetings)."""
    if len(line) < 3 or not line[:3].isdigit() or line[:1] not in _GENERIC_DETAIL:
        return line
    if line[:3] == b"220" or _HAS_ENHANCED.match(line):
        return line
    detail = _SPECIFIC.get(line[:3], _GENERIC_DETAIL[line[:1]])
    separator, text = line[3:4] or b" ", line[4:]
    return line[:3] + separator + detail + (b" " + text if text else b"")


class SubmissionProtocol(SMTP):
    """aiosmtpd's SMTP with enhanced status codes and no source routes."""

    _in_ehlo = False

    async def push(self, status: AnyStr) -> None:
        if not self._in_ehlo:
            raw = status.encode("utf-8") if isinstance(status, str) else status
            await super().push(with_enhanced_code(raw))
            return
        await super().push(status)

    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802 - aiosmtpd dispatch name
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        if arg and _SOURCE_ROUTE.search(arg) and self.session and self.session.authenticated:
            await self.push(replies.ROUTING_REFUSED)
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        if arg and _SOURCE_ROUTE.search(arg) and self.session and self.session.authenticated:
            await self.push(replies.ROUTING_REFUSED)
            return
        await super().smtp_RCPT(arg)
