"""Turn a finished sign-in into a source: a new one with the provider's mail server, or a new
grant for an existing one (after "reconnect needed")."""

from __future__ import annotations

from gateway.oauth2.flow import AuthorizationError, ConnectedAccount, PendingAuthorization
from gateway.oauth2.providers import OAuth2Provider
from gateway.store import MailStore, SourceInfo


def save_connected_account(
    store: MailStore,
    provider: OAuth2Provider,
    pending: PendingAuthorization,
    account: ConnectedAccount,
) -> SourceInfo:
    if pending.source_id is not None:
        source = store.get_source_by_id(source_id=pending.source_id)
        if source.user_id != pending.user_id:
            raise AuthorizationError("no such source")
        # Another account's grant would log in as someone else, or fail forever.
        if source.username.lower() != account.address.lower():
            raise AuthorizationError(
                f"signed in as {account.address}, but the source reads {source.username}"
            )
        return store.reconnect_oauth_source(source_id=pending.source_id, tokens=account.tokens)
    server = provider.pop3 if pending.protocol == "pop3" else provider.imap
    if server is None:
        raise AuthorizationError(f"{provider.title} has no {pending.protocol} server configured")
    assert account.tokens.refresh_token is not None  # noqa: S101 - finish_authorization checks
    # Plaintext only where the operator configured a provider's server so (a test setup).
    options = {"allow_plaintext": True} if server.security == "none" else {}
    return store.add_source(
        user_id=pending.user_id,
        name=pending.name or account.address,
        protocol=pending.protocol,
        host=server.host,
        port=server.port,
        security=server.security,
        username=account.address,
        secret=account.tokens.refresh_token,
        options=options,
        oauth=account.tokens,
    )
