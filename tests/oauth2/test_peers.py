"""The OAuth2 peers themselves: tokens from oidc-provider open Dovecot over XOAUTH2."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.fixtures_oauth2 import OAUTH2_USER, OAuth2Peers

pytestmark = pytest.mark.system
REDIRECT = "http://127.0.0.1:1/api/oauth2/callback"


def test_dovecot_accepts_provider_token_and_rejects_others(oauth2_peers: OAuth2Peers) -> None:
    tokens = oauth2_peers.provider.authorize(REDIRECT)
    assert "refresh_token" in tokens
    port = oauth2_peers.dovecot.imap_port
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client:
        assert client.oauth2_login(OAUTH2_USER, tokens["access_token"]) == [b"Logged in"]
    with IMAPClient("127.0.0.1", port=port, ssl=False) as client, pytest.raises(LoginError):
        client.oauth2_login(OAUTH2_USER, tokens["access_token"] + "x")
