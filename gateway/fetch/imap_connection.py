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
from gateway.fetch.tls_trust import client_tls_context, verify_pinned_certificate
from gateway.store import SourceInfo

log = logging.getLogger("gateway.fetch")


class ImapAuthenticator(Protocol):
    """Logs an IMAP session in (LOGIN now; XOAUTH2 via `oauth2_login` can implement this)."""

    def authenticate_imap(self, client: IMAPClient, *, username: str) -> None: ...


def open_imap(source: SourceInfo, authenticator: ImapAuthenticator) -> IMAPClient:
    """Connect, secure and log in; the caller owns the returned client (logout or shutdown)."""
    client = _connect(source)
    try:
        try:
            authenticator.authenticate_imap(client, username=source.username)
        except Exception as error:
            raise classify_error(error, during_auth=True) from None
    except BaseException:
        close_quietly(client)
        raise
    log.info(
        "event=imap_logged_in source_id=%d host=%s security=%s",
        source.id,
        source.host,
        source.security,
    )
    return client


def _quiet_protocol_trace(client: IMAPClient) -> None:
    """IMAPClient turns imaplib's trace on (level 5) for its logger, and imaplib then formats
    every line it reads — the repr of each message body included — before the logger drops it:
    a third of a first sync's CPU. Keep the trace only when someone is listening."""
    if not logging.getLogger("imapclient").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def close_quietly(client: IMAPClient) -> None:
    """LOGOUT if the peer still answers, else drop the socket; never raises."""
    try:
        client.logout()
    except Exception:
        # The connection may already be gone; closing the socket is all that is left.
        with contextlib.suppress(Exception):
            client.shutdown()


def _connect(source: SourceInfo) -> IMAPClient:
    options = source.options
    if source.security == "none" and not plaintext_allowed(options):
        raise SyncError(
            "tls", "plaintext IMAP refused: set the source option allow_plaintext to allow it"
        )
    timeout = network_timeout(options)
    client: IMAPClient | None = None
    try:
        if source.security == "tls":
            client = IMAPClient(
                source.host,
                port=source.port,
                ssl=True,
                ssl_context=client_tls_context(options),
                timeout=timeout,
            )
            _quiet_protocol_trace(client)
            verify_pinned_certificate(client.socket(), options)
        else:
            client = IMAPClient(source.host, port=source.port, ssl=False, timeout=timeout)
            _quiet_protocol_trace(client)
            if source.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise SyncError(
                        "tls", "server does not offer STARTTLS; choose security tls or none"
                    )
                client.starttls(client_tls_context(options))
                verify_pinned_certificate(client.socket(), options)
        return client
    except Exception as error:
        if client is not None:
            with contextlib.suppress(Exception):  # already failing: report the first error
                client.shutdown()
        raise classify_error(error) from None
