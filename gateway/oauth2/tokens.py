"""Access tokens for OAuth2 sources: cached encrypted in the store, refreshed before expiry
and once after the server refused one, with authlib's OAuth2 client over httpx.

A refused refresh (`invalid_grant`: revoked, expired, password changed) is final until the
user connects the account again: it raises `SyncError("reconnect")`, which stops the source.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.fetch.errors import SyncError
from gateway.oauth2.providers import OAuth2Provider, ProviderError
from gateway.store.oauth_grants import OAuthTokens

if TYPE_CHECKING:
    from gateway.store import MailStore, SourceInfo
    from gateway.store.views import OAuthGrant

log = logging.getLogger("gateway.oauth2")

# Refresh this long before expiry (at most a quarter of the lifetime): a token must outlive
# the login that carries it.
REFRESH_MARGIN = timedelta(seconds=60)
TOKEN_ENDPOINT_TIMEOUT = 30.0

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(source_id: int) -> threading.Lock:
    # One refresh per source at a time in this process: a second concurrent refresh would
    # replay a rotated refresh token, and providers revoke the whole grant for that.
    with _locks_guard:
        return _locks.setdefault(source_id, threading.Lock())


def tokens_from_response(
    provider: OAuth2Provider, response: dict[str, Any], *, now: datetime, scopes: str
) -> OAuthTokens:
    """What to store from a token-endpoint answer (RFC 6749 §5.1); `expires_at` is when to
    stop using the access token, a margin before it really expires."""
    expires_in = response.get("expires_in")
    expires_at = None
    if expires_in is not None:
        lifetime = timedelta(seconds=float(expires_in))
        expires_at = now + lifetime - min(REFRESH_MARGIN, lifetime / 4)
    refresh = response.get("refresh_token")
    return OAuthTokens(
        provider=provider.name,
        scopes=str(response.get("scope") or scopes),
        access_token=str(response["access_token"]),
        expires_at=expires_at,
        refresh_token=str(refresh) if refresh else None,
    )


def access_token(store: MailStore, source: SourceInfo, *, refused_token: str | None = None) -> str:
    """A usable access token for `source`. `refused_token`: the server just refused that one,
    so refresh unless another thread or replica already has."""
    cached = _usable_token(store.read_oauth_grant(source_id=source.id), refused_token)
    if cached is not None:
        return cached
    with _lock_for(source.id), store.oauth_refresh_lock(source_id=source.id):
        # Read again under the locks: whoever held them may have refreshed already.
        grant = store.read_oauth_grant(source_id=source.id)
        cached = _usable_token(grant, refused_token)
        if cached is not None:
            return cached
        try:
            provider = store.oauth2_providers.get(grant.provider)
        except ProviderError as error:
            raise SyncError("auth", str(error)) from None
        now = datetime.now(UTC)
        response = _refresh(provider, grant.refresh_token)
        tokens = tokens_from_response(provider, response, now=now, scopes=grant.scopes)
        # Saved before use: a rotated refresh token must never be lost (see save_oauth_tokens).
        store.save_oauth_tokens(source_id=source.id, tokens=tokens)
        log.info(
            "event=oauth2_token_refreshed source=%s source_id=%d provider=%s rotated=%s "
            "after_refusal=%s",
            source.label,
            source.id,
            provider.name,
            tokens.refresh_token is not None,
            refused_token is not None,
        )
        return tokens.access_token


def _usable_token(grant: OAuthGrant, refused_token: str | None) -> str | None:
    token = grant.access_token
    if token is None or token == refused_token:
        return None
    expires = grant.access_expires_at
    return token if expires is None or expires > datetime.now(UTC) else None


def _refresh(provider: OAuth2Provider, refresh_token: str) -> dict[str, Any]:
    # Imported here: authlib is only needed by processes that refresh tokens.
    import httpx
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

    try:
        with OAuth2Client(
            provider.client_id, provider.client_secret, timeout=TOKEN_ENDPOINT_TIMEOUT
        ) as client:
            token = client.refresh_token(provider.token_endpoint, refresh_token=refresh_token)
    except OAuthError as error:
        # RFC 6749 §5.2: invalid_grant is a revoked or expired refresh token.
        if error.error == "invalid_grant":
            raise SyncError(
                "reconnect", f"{provider.title} no longer accepts the grant: connect again"
            ) from None
        raise SyncError("auth", f"token refresh refused: {error.error}") from None
    except httpx.TimeoutException:
        raise SyncError("timeout", "the token endpoint did not answer in time") from None
    except httpx.HTTPError as error:
        raise SyncError("connect", f"token endpoint failed: {type(error).__name__}") from None
    return dict(token)
