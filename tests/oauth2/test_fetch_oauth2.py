"""OAuth2 sources fetch from a Dovecot that checks every token at the provider (real peers):
XOAUTH2 and OAUTHBEARER over IMAP and POP3, refresh before expiry and after a refusal, and a
revoked grant that stops the source as "reconnect needed"."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from gateway.cli import _source_state
from gateway.fetch.errors import SyncError
from gateway.fetch.runner import run_source_sync
from gateway.oauth2.tokens import access_token
from gateway.store import MailStore
from gateway.store.oauth_grants import OAuthTokens
from gateway.sync_pass import run_sync_pass
from tests.oauth2.helpers import connect_source
from tests.support.fixtures_oauth2 import OAUTH2_USER, OAuth2Peers, running_oauth2_peers

pytestmark = pytest.mark.system


def _mail(subject: str) -> bytes:
    return f"From: a@example.test\r\nTo: {OAUTH2_USER}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode()


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("imap", "xoauth2"), ("imap", "oauthbearer"), ("pop3", "xoauth2"), ("pop3", "oauthbearer")],
)
def test_source_fetches_over_sasl_bearer(
    sqlite_store: MailStore, oauth2_peers: OAuth2Peers, protocol: str, mechanism: str
) -> None:
    user = sqlite_store.create_user(name="owner", password="pw")
    oauth2_peers.dovecot.load_maildir(OAUTH2_USER, "INBOX", [_mail("one"), _mail("two")])
    source = connect_source(
        sqlite_store,
        oauth2_peers,
        user_id=user.id,
        protocol=protocol,
        options={"sasl_mechanism": mechanism},
    )
    assert source.auth_method == "oauth2" and source.username == OAUTH2_USER
    report = run_source_sync(sqlite_store, source)
    assert report.fetched == 2
    log = oauth2_peers.dovecot.log_path.read_text()
    assert f"method={mechanism.upper()}" in log


def test_expired_access_token_is_refreshed_without_a_failed_sync(store: MailStore) -> None:
    """On SQLite and on PostgreSQL (where replicas take turns on an advisory lock)."""
    with running_oauth2_peers(access_token_ttl=2) as peers:
        user = store.create_user(name="owner", password="pw")
        source = connect_source(store, peers, user_id=user.id)
        first = store.read_oauth_grant(source_id=source.id)
        run_source_sync(store, source)
        time.sleep(2.5)  # the first access token is now dead at the provider
        peers.dovecot.load_maildir(OAUTH2_USER, "INBOX", [_mail("later")])
        report = run_source_sync(store, store.get_source_by_id(source_id=source.id))
        assert report.fetched == 1
        second = store.read_oauth_grant(source_id=source.id)
        assert second.access_token != first.access_token
        # oidc-provider rotates refresh tokens: the new one was stored before being used.
        assert second.refresh_token != first.refresh_token
        assert peers.provider.introspect(str(first.access_token))["active"] is False
        after = store.get_source_by_id(source_id=source.id)
        assert after.consecutive_failures == 0 and after.last_error is None


def test_refused_access_token_is_refreshed_once(
    sqlite_store: MailStore, oauth2_peers: OAuth2Peers
) -> None:
    user = sqlite_store.create_user(name="owner", password="pw")
    source = connect_source(sqlite_store, oauth2_peers, user_id=user.id)
    grant = sqlite_store.read_oauth_grant(source_id=source.id)
    # The provider revokes the access token although it has not expired.
    oauth2_peers.provider.revoke(str(grant.access_token), hint="access_token")
    report = run_source_sync(sqlite_store, source)
    assert report.fetched == 0
    assert sqlite_store.read_oauth_grant(source_id=source.id).access_token != grant.access_token


def test_revoked_grant_needs_reconnect_and_is_not_retried(
    sqlite_store: MailStore, oauth2_peers: OAuth2Peers
) -> None:
    user = sqlite_store.create_user(name="owner", password="pw")
    source = connect_source(sqlite_store, oauth2_peers, user_id=user.id)
    grant = sqlite_store.read_oauth_grant(source_id=source.id)
    oauth2_peers.provider.revoke(grant.refresh_token)
    with pytest.raises(SyncError) as raised:
        run_source_sync(sqlite_store, source)
    assert raised.value.error_class == "reconnect"
    stopped = sqlite_store.get_source_by_id(source_id=source.id)
    assert stopped.reconnect_needed and stopped.credentials_rejected
    assert _source_state(stopped).startswith("reconnect needed")
    # No retry storm: the next pass skips it without asking the provider again.
    assert run_sync_pass(sqlite_store, user_name=None, source_name=None) == 1
    assert sqlite_store.get_source_by_id(source_id=source.id).consecutive_failures == 1


def test_concurrent_refreshes_use_the_rotated_refresh_token_once(store: MailStore) -> None:
    """Many logins at once after expiry refresh once: a second refresh with the same rotated
    refresh token would make the provider revoke the grant (oidc-provider does)."""
    with running_oauth2_peers() as peers:
        user = store.create_user(name="owner", password="pw")
        source = connect_source(store, peers, user_id=user.id)
        grant = store.read_oauth_grant(source_id=source.id)
        expired = OAuthTokens(
            provider=grant.provider,
            scopes=grant.scopes,
            access_token=str(grant.access_token),
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        store.save_oauth_tokens(source_id=source.id, tokens=expired)
        with ThreadPoolExecutor(8) as pool:
            tokens = set(pool.map(lambda _: access_token(store, source), range(8)))
        assert len(tokens) == 1 and grant.access_token not in tokens
        assert peers.provider.introspect(tokens.pop())["active"] is True
        run_source_sync(store, source)


def test_provider_down_is_a_temporary_failure_not_a_refused_login(
    sqlite_store: MailStore, oauth2_peers: OAuth2Peers
) -> None:
    """Dovecot cannot introspect: it answers [UNAVAILABLE], which must neither refresh the
    token nor count towards "credentials rejected"."""
    user = sqlite_store.create_user(name="owner", password="pw")
    source = connect_source(sqlite_store, oauth2_peers, user_id=user.id)
    token = sqlite_store.read_oauth_grant(source_id=source.id).access_token
    oauth2_peers.provider.stop()
    with pytest.raises(SyncError) as raised:
        run_source_sync(sqlite_store, source)
    assert raised.value.error_class == "protocol"
    assert sqlite_store.read_oauth_grant(source_id=source.id).access_token == token
