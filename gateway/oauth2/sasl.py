"""SASL initial responses that carry an OAuth2 bearer token (sans-IO: text in, bytes out).

XOAUTH2 is Google's and Microsoft's mechanism (https://developers.google.com/gmail/imap/
xoauth2-protocol); OAUTHBEARER is its standard form (RFC 7628 §3.1). Both answer a failure
with a JSON challenge the client must acknowledge with an empty response (RFC 7628 §3.2.3).
"""

from __future__ import annotations

MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


def _check(user: str, token: str) -> None:
    # \x01 separates the fields: a user or token holding one (or a line break) could forge
    # another field or command.
    if any(ch in user + token for ch in "\x01\r\n\0"):
        raise ValueError("user name or token holds a control character")


def xoauth2_response(user: str, token: str) -> bytes:
    """`user=…^Aauth=Bearer …^A^A`."""
    _check(user, token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer_response(user: str, token: str, *, host: str, port: int) -> bytes:
    """RFC 7628 §3.1: a GS2 header with the authzid (Dovecot 2.3 takes the user from it),
    then host, port and the bearer token. RFC 5801 §4: ',' and '=' in the authzid are escaped."""
    _check(user, token)
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def initial_response(mechanism: str, user: str, token: str, *, host: str, port: int) -> bytes:
    if mechanism == "OAUTHBEARER":
        return oauthbearer_response(user, token, host=host, port=port)
    if mechanism == "XOAUTH2":
        return xoauth2_response(user, token)
    raise ValueError(f"unknown SASL mechanism {mechanism!r}")
