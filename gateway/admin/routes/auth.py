"""Log in and out of the panel, the current session, and changing one's own password."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from gateway.admin.deps import AdminServices, CurrentUser, ServicesDep, StoreDep
from gateway.admin.schemas import LoginRequest, PasswordChange, SessionPublic, UserPublic
from gateway.admin.sessions import (
    SESSION_COOKIE,
    clear_session_cookie,
    csrf_token,
    new_session_token,
    set_session_cookie,
)
from gateway.store import UserInfo

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api", tags=["auth"])


def user_public(user: UserInfo) -> UserPublic:
    return UserPublic(
        id=user.id, name=user.name, is_admin=user.is_admin, created_at=user.created_at
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    responses={401: {"description": "Wrong name or password"}, 429: {"description": "Throttled"}},
)
async def login(
    body: LoginRequest, request: Request, response: Response, services: ServicesDep
) -> SessionPublic:
    """Log in with a gateway user's password; sets the session cookie.

    Failed logins slow down the address and the user name (the protocol-agnostic throttle
    IMAP uses too); a throttled attempt is refused at once with Retry-After, unchecked."""
    address = client_address(request)
    throttle = services.throttle
    async with throttle.attempt(address=address, username=body.username, patience=0) as wait:
        if wait:
            seconds = math.ceil(wait)
            log.warning("event=admin_login_throttled address=%s user=%r", address, body.username)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many failed logins; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        user = await run_in_threadpool(
            services.store.authenticate_user,
            name=body.username,
            password=body.password.get_secret_value(),
        )
        if user is None:
            await throttle.record_failure(address=address, username=body.username)
            log.warning("event=admin_login_failed address=%s user=%r", address, body.username)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        await throttle.record_success(address=address, username=body.username)
    token = new_session_token()
    lifetime = timedelta(hours=services.settings.admin_session_hours)
    now = datetime.now(UTC)
    await run_in_threadpool(_open_session, services, user.id, token, now, lifetime)
    set_session_cookie(response, request, token, lifetime)
    log.info("event=admin_login user_id=%d address=%s", user.id, address)
    return SessionPublic(user=user_public(user), csrf_token=csrf_token(token))


def _open_session(
    services: AdminServices, user_id: int, token: str, now: datetime, lifetime: timedelta
) -> None:
    services.store.delete_expired_admin_sessions(now=now)  # logins are rare: tidy up here
    services.store.create_admin_session(user_id=user_id, token=token, expires_at=now + lifetime)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, user: CurrentUser, store: StoreDep) -> None:
    """End the browser session (API tokens are revoked under /api/tokens)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        store.delete_admin_session(token=cookie)
    clear_session_cookie(response, request)
    log.info("event=admin_logout user_id=%d", user.id)


@router.get("/session")
def current_session(request: Request, user: CurrentUser) -> SessionPublic:
    """Who is logged in, and the CSRF token for this session (empty for API tokens)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return SessionPublic(user=user_public(user), csrf_token=csrf_token(cookie) if cookie else "")


@router.post(
    "/session/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "Current password wrong"}},
)
def change_own_password(
    body: PasswordChange, request: Request, user: CurrentUser, store: StoreDep
) -> None:
    """Change one's own password (the current one is asked again); other browser sessions
    of the user end."""
    current = body.current_password.get_secret_value()
    if store.authenticate_user(name=user.name, password=current) is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    store.set_user_password(name=user.name, password=body.new_password.get_secret_value())
    store.delete_user_admin_sessions(
        user_id=user.id, keep_token=request.cookies.get(SESSION_COOKIE)
    )
    log.info("event=admin_password_changed user_id=%d", user.id)
