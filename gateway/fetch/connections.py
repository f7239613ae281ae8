"""Open an authenticated POP3 session for a source: TLS mode, timeouts, pluggable auth.

Every network step is bounded: the socket timeout covers the connect and every later read
and write, so a server that accepts and then never answers costs one timeout, not a thread.
"""

from __future__ import annotations

import logging
import poplib
from typing import TYPE_CHECKING, Any, Protocol

from gateway.fetch.errors import SyncError, classify_error
from gateway.fetch.tls_trust import client_tls_context, verify_pinned_certificate
from gateway.store import SourceInfo

if TYPE_CHECKING:
    from gateway.fetch.imap_client import ImapClientPeer

log = logging.getLogger("gateway.fetch")

DEFAULT_TIMEOUT = 30.0


class Authenticator(Protocol):
    """Logs a POP3 session in; raises `poplib.error_proto` (or SyncError) on refusal."""

    def authenticate(self, client: poplib.POP3, *, username: str) -> None: ...


class PasswordAuthenticator:
    """USER/PASS (RFC 1939 §7) or IMAP LOGIN; the password is only sent, never logged."""

    def __init__(self, password: str) -> None:
        self._password = password

    def __repr__(self) -> str:
        return "PasswordAuthenticator(<hidden>)"

    def authenticate(self, client: poplib.POP3, *, username: str) -> None:
        if any(ch in username + self._password for ch in "\r\n\0"):
            raise SyncError("auth", "user name or password contains a line break or NUL")
        client.user(username)
        client.pass_(self._password)

    def authenticate_imap(self, client: ImapClientPeer, *, username: str) -> None:
        if any(ch in username + self._password for ch in "\r\n\0"):
            raise SyncError("auth", "user name or password contains a line break or NUL")
        client.login(username, self._password)


def network_timeout(options: dict[str, Any]) -> float:
    try:
        value = float(options.get("timeout_seconds", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def plaintext_allowed(options: dict[str, Any]) -> bool:
    return options.get("allow_plaintext") is True


def open_pop3(source: SourceInfo, authenticator: Authenticator) -> poplib.POP3:
    """Connect, secure and log in; the caller owns the returned client (QUIT or close it)."""
    options = source.options
    timeout = network_timeout(options)
    client = _connect(source, timeout)
    try:
        try:
            authenticator.authenticate(client, username=source.username)
        except Exception as error:
            raise classify_error(error, during_auth=True) from None
    except BaseException:
        client.close()
        raise
    log.info(
        "event=pop3_logged_in source=%s source_id=%d host=%s security=%s",
        source.label,
        source.id,
        source.host,
        source.security,
    )
    return client


def _connect(source: SourceInfo, timeout: float) -> poplib.POP3:
    options = source.options
    if source.security == "none" and not plaintext_allowed(options):
        raise SyncError(
            "plaintext",
            "plaintext POP3 refused: set the source option allow_plaintext to allow it",
        )
    client: poplib.POP3 | None = None
    try:
        if source.security == "tls":
            context = client_tls_context(options)
            client = poplib.POP3_SSL(source.host, source.port, timeout=timeout, context=context)
            verify_pinned_certificate(client.sock, options)
        else:
            client = poplib.POP3(source.host, source.port, timeout=timeout)
            if source.security == "starttls":
                _start_tls(client, options)
        return client
    except Exception as error:
        if client is not None:
            client.close()
        raise classify_error(error) from None


def _start_tls(client: poplib.POP3, options: dict[str, Any]) -> None:
    """RFC 2595 §4: STLS, then the session continues over TLS; refuse if not offered."""
    try:
        capabilities = client.capa()
    except poplib.error_proto:
        capabilities = {}
    if "STLS" not in capabilities:
        raise SyncError("tls", "server does not offer STLS; choose security tls or none")
    client.stls(client_tls_context(options))
    verify_pinned_certificate(client.sock, options)
