"""One error root for fetching, and the mapping from whatever broke to a short, safe class.

The class and message are what the admin panel shows and the scheduler backs off on, so they
must be stable, short and never carry a secret or a message body.
"""

from __future__ import annotations

import errno
import imaplib
import poplib
import re
import socket
import ssl
from typing import Literal, get_args

ErrorClass = Literal[
    "dns",
    "connect",
    "tls",
    # security none without the source's allow_plaintext: refused before connecting.
    "plaintext",
    "auth",
    # The OAuth2 grant is gone (revoked, expired): the user must connect the account again.
    "reconnect",
    "protocol",
    "quota",
    "timeout",
    "throttled",
]
ERROR_CLASSES: tuple[ErrorClass, ...] = get_args(ErrorClass)
_MAX_SERVER_TEXT = 160
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
)


class SyncError(Exception):
    """A sync of one source failed; `error_class` says what kind of failure it was."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(f"{error_class}: {message}")
        self.error_class: ErrorClass = error_class
        self.message = message


def server_text(response: bytes | str | object) -> str:
    """A server reply trimmed to printable ASCII and a bounded length, for error messages."""
    text = response.decode("ascii", "replace") if isinstance(response, bytes) else str(response)
    printable = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return printable[:_MAX_SERVER_TEXT]


def classify_pop3_reply(reply: bytes | str | object, *, during_auth: bool) -> SyncError:
    """Map a POP3 `-ERR` reply to an error class (RFC 2449 §8 / RFC 3206 response codes)."""
    text = server_text(reply)
    upper = text.upper()
    if "[LOGIN-DELAY]" in upper or "THROTTL" in upper:
        return SyncError("throttled", f"server asks to wait: {text}")
    if "[IN-USE]" in upper:
        return SyncError("throttled", f"mailbox in use by another session: {text}")
    if "[SYS/TEMP]" in upper or "[SYS/PERM]" in upper:
        return SyncError("protocol", f"server-side failure: {text}")
    if "QUOTA" in upper or "LIMIT EXCEEDED" in upper:
        return SyncError("quota", f"server limit reached: {text}")
    if during_auth or "[AUTH]" in upper:
        return SyncError("auth", f"login rejected: {text}")
    return SyncError("protocol", f"unexpected server reply: {text}")


# Microsoft 365: "Request is throttled. Suggested Backoff Time: 12345 milliseconds".
_SUGGESTED_BACKOFF = re.compile(r"backoff\s*time:?\s*(\d+)\s*(ms|millisec|milliseconds)?", re.I)


class ThrottledError(SyncError):
    """The server asked us to slow down; `retry_after` is its suggested wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__("throttled", message)
        self.retry_after = retry_after


def suggested_backoff_seconds(text: str) -> float | None:
    """The wait a throttling reply suggests, in seconds (Microsoft states milliseconds)."""
    match = _SUGGESTED_BACKOFF.search(text)
    if match is None:
        return None
    return int(match.group(1)) / 1000.0


def classify_imap_reply(reply: bytes | str | object, *, during_auth: bool) -> SyncError:
    """Map an IMAP NO/BAD/BYE to an error class (RFC 5530 response codes, provider texts)."""
    text = server_text(reply)
    upper = text.upper()
    if "THROTTL" in upper or ("[UNAVAILABLE]" in upper and "TRY AGAIN" in upper):
        return ThrottledError(f"server asks to wait: {text}", suggested_backoff_seconds(text))
    if "[OVERQUOTA]" in upper or "[LIMIT]" in upper or "BANDWIDTH" in upper or "QUOTA" in upper:
        return SyncError("quota", f"server limit reached: {text}")
    if "[UNAVAILABLE]" in upper:
        # RFC 5530 §3: a temporary failure, e.g. Dovecot's "Temporary authentication failure"
        # when it cannot reach the token introspection: not a refused login.
        return SyncError("protocol", f"server-side temporary failure: {text}")
    if (
        during_auth
        or "[AUTHENTICATIONFAILED]" in upper
        or "[AUTHORIZATIONFAILED]" in upper
        or "[EXPIRED]" in upper
    ):
        return SyncError("auth", f"login rejected: {text}")
    return SyncError("protocol", f"unexpected server reply: {text}")


def classify_error(error: BaseException, *, during_auth: bool = False) -> SyncError:
    """Turn any exception raised while syncing into a `SyncError` with a safe message."""
    if isinstance(error, SyncError):
        return error
    if isinstance(error, socket.gaierror):
        return SyncError("dns", "host name could not be resolved")
    if isinstance(error, TimeoutError | socket.timeout):
        return SyncError("timeout", "the server did not answer in time")
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = getattr(error, "verify_message", None) or "verification failed"
        return SyncError("tls", f"server certificate not trusted: {server_text(reason)}")
    if isinstance(error, ssl.SSLError):
        reason = getattr(error, "reason", None) or "unknown"
        hint = ""
        if str(reason).upper() in _NOT_TLS_REASONS:
            # What OpenSSL says when the server answered in plaintext (a 143/110-style port).
            hint = "; the port does not speak TLS at once: try security starttls (or none)"
        return SyncError("tls", f"TLS handshake or record failure: {server_text(reason)}{hint}")
    if isinstance(error, poplib.error_proto):
        reply = error.args[0] if error.args else b""
        return classify_pop3_reply(reply, during_auth=during_auth)
    if isinstance(error, imaplib.IMAP4.abort):
        # A dropped connection surfaces as abort ("socket error: EOF", "command: X => …").
        text = server_text(error.args[0] if error.args else b"")
        if "THROTTL" in text.upper():
            return ThrottledError(f"server asks to wait: {text}", suggested_backoff_seconds(text))
        return SyncError("connect", f"connection lost: {text}")
    if isinstance(error, imaplib.IMAP4.error):
        reply = error.args[0] if error.args else b""
        return classify_imap_reply(reply, during_auth=during_auth)
    if isinstance(error, ConnectionRefusedError):
        return SyncError("connect", "connection refused")
    if isinstance(error, ConnectionResetError | BrokenPipeError | EOFError):
        return SyncError("connect", "the server closed the connection")
    if isinstance(error, OSError) and error.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ECONNABORTED,
        errno.EADDRNOTAVAIL,
    ):
        return SyncError("connect", f"network error: {errno.errorcode.get(error.errno, '?')}")
    if isinstance(error, OSError):
        return SyncError("connect", f"network error: {type(error).__name__}")
    return SyncError("protocol", f"unexpected failure: {type(error).__name__}")
