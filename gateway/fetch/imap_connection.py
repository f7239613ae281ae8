"""Open an authenticated IMAP session for a source: TLS mode, timeouts, pluggable auth.

Same rules as POP3 (`connections.py`): TLS verified against the source's trust options, a pin
checked before any credential is sent, plaintext only when the source allows it, and one
socket timeout bounding every network step.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from imapclient import IMAPClient

from gateway.fetch.connections import network_timeout, plaintext_allowed
from gateway.fetch.errors import SyncError, classify_error
from gateway.fetch.imap_client import ImapClientPeer
from gateway.fetch.tls_trust import client_tls_context, verify_pinned_certificate
from gateway.store import SourceInfo

log = logging.getLogger("gateway.fetch")


class ImapAuthenticator(Protocol):
    """Logs an IMAP session in: `PasswordAuthenticator` uses LOGIN, `OAuth2Authenticator`
    XOAUTH2/OAUTHBEARER (`gateway.fetch.source_auth` picks the source's)."""

    def authenticate_imap(self, client: ImapClientPeer, *, username: str) -> None: ...


def open_imap(source: SourceInfo, authenticator: ImapAuthenticator) -> ImapClientPeer:
    """Connect, secure and log in; the caller owns the returned connection (`close()` it)."""
    client = _connect(source)
    try:
        try:
            authenticator.authenticate_imap(client, username=source.username)
        except Exception as error:
            raise classify_error(error, during_auth=True) from None
    except BaseException:
        client.close()
        raise
    log.info(
        "event=imap_logged_in source=%s source_id=%d host=%s security=%s",
        source.label,
        source.id,
        source.host,
        source.security,
    )
    return client


def _connect(source: SourceInfo) -> ImapClientPeer:
    options = source.options
    if source.security == "none" and not plaintext_allowed(options):
        raise SyncError(
            "plaintext",
            "plaintext IMAP refused: set the source option allow_plaintext to allow it",
        )
    timeout = network_timeout(options)
    client: ImapClientPeer | None = None
    try:
        if source.security == "tls":
            client = ImapClientPeer(
                IMAPClient(
                    source.host,
                    port=source.port,
                    ssl=True,
                    ssl_context=client_tls_context(options),
                    timeout=timeout,
                )
            )
            verify_pinned_certificate(client.socket(), options)
        else:
            client = ImapClientPeer(
                IMAPClient(source.host, port=source.port, ssl=False, timeout=timeout)
            )
            if source.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise SyncError(
                        "tls", "server does not offer STARTTLS; choose security tls or none"
                    )
                client.start_tls(client_tls_context(options))
                verify_pinned_certificate(client.socket(), options)
        return client
    except Exception as error:
        if client is not None:
            with contextlib.suppress(Exception):  # already failing: report the first error
                client.shutdown()
        raise classify_error(error) from None
