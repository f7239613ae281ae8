"""The authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636) that connects an account.

`start_authorization` gives the URL to send the browser to and what must be kept until it
comes back (`PendingAuthorization`: the state and the PKCE verifier, secret); the caller keeps
it (the panel in a sealed cookie, the CLI in memory). `finish_authorization` checks the
redirect against it, trades the code for tokens and names the account's address.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.oauth2.providers import OAuth2Provider
from gateway.oauth2.tokens import TOKEN_ENDPOINT_TIMEOUT, tokens_from_response
from gateway.store.oauth_grants import OAuthTokens

CALLBACK_PATH = "/api/oauth2/callback"


class AuthorizationError(Exception):
    """The provider refused, the redirect does not match the request, or no address came."""


@dataclass(frozen=True)
class PendingAuthorization:
    """What the gateway remembers between sending the browser off and its return."""

    provider: str
    redirect_uri: str
    state: str
    code_verifier: str = field(repr=False)
    # What to do with the grant: make a source named `name` for `user_id` (protocol imap or
    # pop3), or give an existing source (`source_id`) its new grant.
    user_id: int = 0
    name: str = ""
    protocol: str = "imap"
    source_id: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PendingAuthorization:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ConnectedAccount:
    address: str
    tokens: OAuthTokens


def start_authorization(
    provider: OAuth2Provider, redirect_uri: str, *, login_hint: str | None = None
) -> tuple[str, PendingAuthorization]:
    """The provider's authorization URL, and what to keep for `finish_authorization`."""
    from authlib.integrations.httpx_client import OAuth2Client

    verifier = secrets.token_urlsafe(48)  # RFC 7636 §4.1: 43-128 characters
    state = secrets.token_urlsafe(24)
    extra: dict[str, str] = dict(provider.authorization_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with OAuth2Client(
        provider.client_id,
        provider.client_secret,
        scope=provider.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    ) as client:
        url, _ = client.create_authorization_url(
            provider.authorization_endpoint, state=state, code_verifier=verifier, **extra
        )
    pending = PendingAuthorization(
        provider=provider.name, redirect_uri=redirect_uri, state=state, code_verifier=verifier
    )
    return str(url), pending


def finish_authorization(
    provider: OAuth2Provider, pending: PendingAuthorization, redirect_url: str
) -> ConnectedAccount:
    """Check the redirect the browser came back with and trade its code for tokens."""
    import httpx
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

    query = dict(parse_qsl(urlsplit(redirect_url).query))
    # RFC 6749 §10.12: a redirect without our state is someone else's (login CSRF).
    if not secrets.compare_digest(query.get("state", ""), pending.state):
        raise AuthorizationError("the redirect does not belong to this sign-in (state differs)")
    if "error" in query:
        raise AuthorizationError(
            f"{provider.title} refused: {query['error']} {query.get('error_description', '')}"
        )
    # RFC 9207 §2.4: an authorization server that names itself must be the one we asked.
    if provider.issuer and "iss" in query and query["iss"].rstrip("/") != provider.issuer:
        raise AuthorizationError("the redirect comes from another issuer")
    code = query.get("code")
    if not code:
        raise AuthorizationError("the redirect carries no authorization code")
    now = datetime.now(UTC)
    try:
        with OAuth2Client(
            provider.client_id,
            provider.client_secret,
            redirect_uri=pending.redirect_uri,
            timeout=TOKEN_ENDPOINT_TIMEOUT,
        ) as client:
            response = dict(
                client.fetch_token(
                    provider.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending.code_verifier,
                )
            )
    except OAuthError as error:
        raise AuthorizationError(f"{provider.title} refused the code: {error.error}") from None
    except httpx.HTTPError as error:
        raise AuthorizationError(f"token endpoint failed: {type(error).__name__}") from None
    tokens = tokens_from_response(provider, response, now=now, scopes=provider.scopes)
    if tokens.refresh_token is None:
        raise AuthorizationError(f"{provider.title} gave no refresh token (offline access)")
    return ConnectedAccount(address=_address(response), tokens=tokens)


def _address(response: dict[str, Any]) -> str:
    """The account's address from the ID token. Its signature is not checked: it came straight
    from the token endpoint over TLS (OpenID Connect Core 1.0 §3.1.3.7 item 6)."""
    id_token = response.get("id_token")
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise AuthorizationError("the provider sent no ID token: add the openid scope")
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        raise AuthorizationError("the provider's ID token is malformed") from None
    # Microsoft puts the sign-in address in preferred_username when email is absent.
    for claim in ("email", "preferred_username", "upn", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and "@" in value:
            return value
    raise AuthorizationError("the ID token names no mail address (add the email scope)")
