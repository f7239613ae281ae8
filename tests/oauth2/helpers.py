"""Connect an OAuth2 source the way the panel does, against the test peers."""

from __future__ import annotations

from dataclasses import replace

from gateway.oauth2.connect import save_connected_account
from gateway.oauth2.flow import finish_authorization, start_authorization
from gateway.oauth2.providers import MailServer, OAuth2Provider, ProviderRegistry
from gateway.store import MailStore, SourceInfo
from tests.support.fixtures_oauth2 import OAuth2Peers
from tests.support.oidc_provider import GATEWAY_CLIENT

REDIRECT_URI = "http://127.0.0.1:9/api/oauth2/callback"


def peer_provider(peers: OAuth2Peers, *, smtp: MailServer | None = None) -> OAuth2Provider:
    """The generic provider as the operator would configure it for the test peers; its
    endpoints come from discovery."""
    return OAuth2Provider(
        name="generic",
        title="Test provider",
        client_id=GATEWAY_CLIENT[0],
        client_secret=GATEWAY_CLIENT[1],
        scopes="openid mail offline_access",
        issuer=peers.provider.issuer,
        imap=MailServer("127.0.0.1", peers.dovecot.imap_port, "none"),
        pop3=MailServer("127.0.0.1", peers.dovecot.pop3_port, "none"),
        smtp=smtp,
    )


def connect_source(
    store: MailStore,
    peers: OAuth2Peers,
    *,
    user_id: int,
    protocol: str = "imap",
    options: dict[str, object] | None = None,
) -> SourceInfo:
    """Register the provider with the store and run the whole authorization-code flow."""
    store.oauth2_providers = ProviderRegistry([peer_provider(peers)])
    provider = store.oauth2_providers.get("generic")
    url, pending = start_authorization(provider, REDIRECT_URI)
    pending = replace(pending, user_id=user_id, protocol=protocol)
    account = finish_authorization(provider, pending, peers.provider.follow(url, REDIRECT_URI))
    source = save_connected_account(store, provider, pending, account)
    if options:
        source = store.update_source(source_id=source.id, options={**source.options, **options})
    return source
