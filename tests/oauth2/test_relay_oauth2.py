"""Relaying as the address of an OAuth2 source: AUTH XOAUTH2 with the source's access token at
an upstream that checks it at the provider; a refused token is refreshed once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.oauth2.relay_token import relay_with_access_token
from gateway.smtp.relay import relay_message
from gateway.store import MailStore
from tests.oauth2.helpers import connect_source
from tests.support.fixtures_oauth2 import OAUTH2_USER, OAuth2Peers
from tests.support.oauth_smtp import OAuthUpstreamSmtp

pytestmark = pytest.mark.system
MESSAGE = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def upstream(tmp_path: Path, oauth2_peers: OAuth2Peers) -> Iterator[OAuthUpstreamSmtp]:
    server = OAuthUpstreamSmtp(tmp_path / "upstream", provider=oauth2_peers.provider).start()
    try:
        yield server
    finally:
        server.close()


def _relay(store: MailStore, identity_id: int) -> None:
    target = store.read_relay_target(identity_id=identity_id)
    assert target.oauth_source is not None and target.secret == ""

    async def blocking(function):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(function)

    outcome = asyncio.run(
        relay_with_access_token(
            relay_message,
            blocking,
            store,
            target,
            sender=OAUTH2_USER,
            recipients=["bob@example.test"],
            content=MESSAGE,
            local_hostname="gateway.test",
            timeout=20,
        )
    )
    assert outcome.delivered == ("bob@example.test",)


def test_relay_logs_in_with_the_access_token_and_refreshes_a_refused_one(
    sqlite_store: MailStore, oauth2_peers: OAuth2Peers, upstream: OAuthUpstreamSmtp
) -> None:
    user = sqlite_store.create_user(name="owner", password="pw")
    source = connect_source(sqlite_store, oauth2_peers, user_id=user.id)
    # The source's address became an identity; here it relays through the test upstream.
    sqlite_store.remove_identity(user_id=user.id, address=OAUTH2_USER)
    identity = sqlite_store.add_identity(
        user_id=user.id,
        address=OAUTH2_USER,
        source_id=source.id,
        relay_host="127.0.0.1",
        relay_port=upstream.port,
        relay_security="starttls",
        relay_username=OAUTH2_USER,
        relay_options={"tls_ca_file": str(upstream.cert)},
    )
    _relay(sqlite_store, identity.id)
    assert upstream.attempts == [(OAUTH2_USER, True)]
    oauth2_peers.provider.revoke(
        str(sqlite_store.read_oauth_grant(source_id=source.id).access_token), hint="access_token"
    )
    _relay(sqlite_store, identity.id)
    assert upstream.attempts[1:] == [(OAUTH2_USER, False), (OAUTH2_USER, True)]
    assert len(upstream.messages()) == 2
