"""Logs a POP3 or IMAP session in with the source's OAuth2 access token.

A refused token is refreshed once and tried again on the same connection (RFC 3501 §6.2.2
and RFC 5034 allow another AUTHENTICATE after a failed one): the provider may have revoked
an access token that had not expired yet. A second refusal is an ordinary "auth" failure.
"""

from __future__ import annotations

import poplib
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.fetch.errors import SyncError, classify_error
from gateway.fetch.pop3_wire import sasl_login
from gateway.oauth2.sasl import MECHANISMS, initial_response
from gateway.oauth2.tokens import access_token

if TYPE_CHECKING:
    from gateway.fetch.imap_client import ImapClientPeer
    from gateway.store import MailStore, SourceInfo

DEFAULT_MECHANISM = "XOAUTH2"


def source_mechanism(source: SourceInfo) -> str:
    """The source option `sasl_mechanism` (xoauth2 or oauthbearer), XOAUTH2 by default: the
    one Google and Microsoft both take."""
    chosen = str(source.options.get("sasl_mechanism", DEFAULT_MECHANISM)).upper()
    if chosen not in MECHANISMS:
        raise SyncError("auth", f"sasl_mechanism must be one of {', '.join(MECHANISMS)}")
    return chosen


class OAuth2Authenticator:
    """The source's bearer token, by XOAUTH2 or OAUTHBEARER; the token is never logged."""

    def __init__(self, store: MailStore, source: SourceInfo) -> None:
        self._store = store
        self._source = source
        self._mechanism = source_mechanism(source)

    def __repr__(self) -> str:
        return f"OAuth2Authenticator({self._source.label}, {self._mechanism})"

    def token_login(self, login: Callable[[str], None]) -> None:
        """`login(token)` with the current token, then once more with a refreshed one if
        the server refused it as a login failure (not a temporary one)."""
        token = access_token(self._store, self._source)
        try:
            login(token)
        except SyncError as error:
            if error.error_class != "auth":
                raise
            login(access_token(self._store, self._source, refused_token=token))

    def authenticate(self, client: poplib.POP3, *, username: str) -> None:
        source = self._source

        def login(token: str) -> None:
            response = initial_response(
                self._mechanism, username, token, host=source.host, port=source.port
            )
            try:
                sasl_login(client, self._mechanism, response)
            except (poplib.error_proto, OSError, EOFError) as error:
                raise classify_error(error, during_auth=True) from None

        self.token_login(login)

    def authenticate_imap(self, client: ImapClientPeer, *, username: str) -> None:
        self.token_login(
            lambda token: client.oauth_login(username, token, mechanism=self._mechanism)
        )
