"""Relay as an identity whose source logs in with OAuth2: fill in a current access token, and
after a refusal try once more with a refreshed one (the upstream may have revoked it early)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.fetch.errors import SyncError
from gateway.oauth2.tokens import access_token
from gateway.smtp.relay import RelayError, RelayOutcome
from gateway.store.views import RelayTarget

if TYPE_CHECKING:
    from gateway.store import MailStore, SourceInfo

RunBlocking = Callable[[Callable[[], Any]], Awaitable[Any]]


async def relay_with_access_token(
    relay: Callable[..., Awaitable[RelayOutcome]],
    run_blocking: RunBlocking,
    store: MailStore,
    target: RelayTarget,
    **message: Any,
) -> RelayOutcome:
    """`relay(target, **message)` with the token in `target.secret`; refreshing runs in the
    I/O threads (`run_blocking`). A refused grant raises `SyncError("reconnect")`: the message
    waits in the queue (retried later) until the user connects the account again."""
    source = target.oauth_source
    assert source is not None  # noqa: S101 - the worker calls this for OAuth2 targets only
    token = await _token(run_blocking, store, source, refused=None)
    try:
        return await relay(replace(target, secret=token), **message)
    except RelayError as error:
        if not error.token_refused:
            raise
    fresh = await _token(run_blocking, store, source, refused=token)
    return await relay(replace(target, secret=fresh), **message)


async def _token(
    run_blocking: RunBlocking, store: MailStore, source: SourceInfo, *, refused: str | None
) -> str:
    try:
        token: str = await run_blocking(lambda: access_token(store, source, refused_token=refused))
    except SyncError as error:
        # Temporary for the queue: the message is retried, and bounces only at its lifetime.
        raise RelayError(f"OAuth2 sign-in: {error.message}", permanent=False) from None
    return token
