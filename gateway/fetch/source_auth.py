"""The authenticator a source logs in with: its password, or its OAuth2 grant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.fetch.connections import PasswordAuthenticator

if TYPE_CHECKING:
    from gateway.oauth2.authenticator import OAuth2Authenticator
    from gateway.store import MailStore, SourceInfo


def authenticator_for(
    store: MailStore, source: SourceInfo
) -> PasswordAuthenticator | OAuth2Authenticator:
    """Fetchers, push, write-back and the Sent copy all log in through this."""
    if source.auth_method == "oauth2":
        # Imported here: password-only setups never load the OAuth2 client.
        from gateway.oauth2.authenticator import OAuth2Authenticator

        return OAuth2Authenticator(store, source)
    return PasswordAuthenticator(store.read_source_secret(source_id=source.id))


def saved_credential(store: MailStore, source: SourceInfo) -> str | OAuth2Authenticator:
    """What the connection check logs a saved source in with: its password, or for OAuth2
    its token (the refresh token must never be sent as a password)."""
    if source.auth_method == "oauth2":
        from gateway.oauth2.authenticator import OAuth2Authenticator

        return OAuth2Authenticator(store, source)
    return store.read_source_secret(source_id=source.id)
