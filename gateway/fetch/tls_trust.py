"""Which server certificates a source trusts: system CAs, a per-source CA file, or a pin.

Options (per source): `tls_ca_file` — a PEM file whose certificates alone are trusted (for a
self-signed server; host name still checked); `tls_fingerprint_sha256` — the hex SHA-256 of
the server's DER certificate, trusted whatever its issuer or name (checked before any
credential is sent).
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from typing import Any

from gateway.fetch.errors import SyncError


def client_tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """A client context for one source, verifying against system CAs unless told otherwise."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pinned_fingerprint(options) is not None:
        # The pin replaces chain and name checks: verify_pinned_certificate runs right after
        # the handshake, before the greeting is trusted or anything is sent.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    ca_file = options.get("tls_ca_file")
    if ca_file:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def pinned_fingerprint(options: dict[str, Any]) -> str | None:
    value = options.get("tls_fingerprint_sha256")
    if not value:
        return None
    return str(value).replace(":", "").strip().lower()


def verify_pinned_certificate(sock: object, options: dict[str, Any]) -> None:
    """If the source pins a certificate, the peer's must match it exactly."""
    expected = pinned_fingerprint(options)
    if expected is None:
        return
    if not isinstance(sock, ssl.SSLSocket):
        raise SyncError("tls", "certificate pin set but the connection is not TLS")
    der = sock.getpeercert(binary_form=True)
    actual = hashlib.sha256(der or b"").hexdigest()
    if not hmac.compare_digest(actual, expected):
        raise SyncError(
            "tls", f"server certificate does not match the pinned fingerprint (got {actual})"
        )
