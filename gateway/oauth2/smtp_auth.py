"""SMTP AUTH XOAUTH2 (RFC 4954 with the XOAUTH2 mechanism) on an aiosmtplib connection."""

from __future__ import annotations

import base64

import aiosmtplib

from gateway.oauth2.sasl import xoauth2_response

# RFC 4954 §4: 334 is a server challenge; 235 means authenticated.
_CHALLENGE = 334
_AUTHENTICATED = 235


class BearerTokenRefusedError(Exception):
    """The upstream refused the access token (535 after the error challenge)."""


async def login_xoauth2(client: aiosmtplib.SMTP, username: str, token: str) -> None:
    """AUTH XOAUTH2 with the initial response; a 334 carries the provider's error JSON, which
    is acknowledged with an empty line before the final 535 (as Gmail documents)."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    encoded = base64.b64encode(xoauth2_response(username, token))
    response = await client.execute_command(b"AUTH", b"XOAUTH2", encoded)
    if response.code == _CHALLENGE:
        response = await client.execute_command(b"")
    if response.code != _AUTHENTICATED:
        raise BearerTokenRefusedError(f"{response.code} {' '.join(response.message.split())}")
