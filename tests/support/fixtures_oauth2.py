"""pytest fixtures for the OAuth2 peers: oidc-provider and a Dovecot that checks its tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.support.dovecot import DovecotServer
from tests.support.oidc_provider import GATEWAY_CLIENT, OidcProvider

OAUTH2_USER = "alice@example.test"
# Test speed only: no 2 s delay per failed login and no per-IP penalty that delays the next
# (good) login by up to 15 s. Never in a production config.
_NO_FAILURE_DELAY = """
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


@dataclass(frozen=True)
class OAuth2Peers:
    provider: OidcProvider
    dovecot: DovecotServer

    def gateway_env(self) -> dict[str, str]:
        """The GATEWAY_OAUTH2_GENERIC_* settings an operator gives for these peers."""
        return {
            "GATEWAY_OAUTH2_GENERIC_ISSUER": self.provider.issuer,
            "GATEWAY_OAUTH2_GENERIC_TITLE": "Test provider",
            "GATEWAY_OAUTH2_GENERIC_CLIENT_ID": GATEWAY_CLIENT[0],
            "GATEWAY_OAUTH2_GENERIC_CLIENT_SECRET": GATEWAY_CLIENT[1],
            "GATEWAY_OAUTH2_GENERIC_SCOPES": "openid mail offline_access",
            "GATEWAY_OAUTH2_GENERIC_IMAP": f"127.0.0.1:{self.dovecot.imap_port}:none",
        }


@contextmanager
def running_oauth2_peers(
    *, access_token_ttl: int = 60, rotate_refresh_tokens: bool = True, interactive: bool = False
) -> Iterator[OAuth2Peers]:
    """oidc-provider plus a Dovecot whose oauth2 passdb introspects its tokens; the mailbox
    OAUTH2_USER exists (its home is made on first login)."""
    with OidcProvider(
        access_token_ttl=access_token_ttl,
        rotate_refresh_tokens=rotate_refresh_tokens,
        interactive=interactive,
    ) as provider:
        dovecot = DovecotServer(
            auth_mechanisms="plain login xoauth2 oauthbearer", extra_config=_NO_FAILURE_DELAY
        )
        dovecot.extra_passdb = provider.dovecot_passdb(dovecot.root / "oauth2.conf.ext")
        dovecot.start()
        try:
            # The userdb is static: only the home directory has to exist for the mail owner.
            dovecot.add_user(OAUTH2_USER, "unused-password")
            yield OAuth2Peers(provider, dovecot)
        finally:
            dovecot.stop()


@pytest.fixture
def oauth2_peers() -> Iterator[OAuth2Peers]:
    with running_oauth2_peers() as peers:
        yield peers
