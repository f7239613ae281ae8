"""A provider's submission server that takes AUTH XOAUTH2 and checks each bearer token at the
authorization server (RFC 7662 introspection), as Gmail's and Outlook's do with theirs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from tests.support.oidc_provider import OidcProvider
from tests.support.smtp_peers import UpstreamSmtp


@dataclass
class OAuthUpstreamSmtp(UpstreamSmtp):
    provider: OidcProvider | None = None
    # What each XOAUTH2 attempt ended in, in order: ("alice@…", True) …
    attempts: list[tuple[str, bool]] = field(default_factory=list)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        try:
            fields = dict(
                part.split("=", 1)
                for part in base64.b64decode(args[1], validate=True).decode().split("\x01")
                if "=" in part
            )
        except (IndexError, binascii.Error, UnicodeDecodeError, ValueError):
            return AuthResult(success=False, handled=False)
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        ok = bearer.startswith("Bearer ") and await asyncio.to_thread(
            self._token_valid_for, user, bearer.removeprefix("Bearer ")
        )
        self.attempts.append((user, ok))
        if ok:
            self.logins += 1
            return AuthResult(success=True, auth_data=user)
        # Gmail's answer to a bad token: a 334 with an error JSON, then 535 after the client's
        # empty response.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)  # handled=False: aiosmtpd sends 535

    def _token_valid_for(self, user: str, token: str) -> bool:
        assert self.provider is not None
        answer: dict[str, Any] = self.provider.introspect(token)
        return (
            bool(answer.get("active"))
            and answer.get("email") == user
            and "mail" in str(answer.get("scope", "")).split()
        )
