"""Browser sessions: a random cookie (HttpOnly, SameSite=Strict, Secure over TLS) and a CSRF
token derived from it, which every state-changing request made with the cookie must echo in
the `X-CSRF-Token` header (a page of another site can neither read the cookie nor the token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import Request, Response

SESSION_COOKIE = "gateway_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_TOKEN_PREFIX = "gwt_"  # noqa: S105 - the marker of our tokens, not a secret


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: stable for its life, useless without the cookie."""
    return hmac.new(session_token.encode(), b"csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session_token), presented)


def set_session_cookie(
    response: Response, request: Request, token: str, lifetime: timedelta
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
