"""What routes depend on, as `Annotated` aliases: the injected services, the caller, and a
source the caller owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Path, Request, status

from gateway.admin.metrics import GatewayMetrics
from gateway.admin.sessions import (
    API_TOKEN_PREFIX,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    csrf_matches,
)
from gateway.auth_throttle import AuthThrottle
from gateway.mail_settings.suggest import SettingsSuggester
from gateway.settings import Settings
from gateway.store import MailStore, NotFoundError, SourceInfo, UserInfo

# Row ids in paths: positive and within a 64-bit SQL integer.
ResourceId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SyncRequester(Protocol):
    """The running fetch scheduler, as far as the admin uses it."""

    def request_sync(self, source_id: int, *, reason: str) -> None: ...


@dataclass
class AdminServices:
    """Everything the admin app works with, built by whoever starts it (no globals)."""

    store: MailStore
    settings: Settings
    scheduler: SyncRequester | None
    throttle: AuthThrottle
    metrics: GatewayMetrics
    suggester: SettingsSuggester


def get_services(request: Request) -> AdminServices:
    services: AdminServices = request.app.state.services
    return services


def get_store(request: Request) -> MailStore:
    return get_services(request).store


ServicesDep = Annotated[AdminServices, Depends(get_services)]
StoreDep = Annotated[MailStore, Depends(get_store)]


def unprocessable(message: str, *location: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (so it matches the schema)."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["body", *location], "msg": message, "type": "value_error"}],
    )


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(request: Request, store: StoreDep) -> UserInfo:
    """The caller, by API token (Authorization: Bearer) or session cookie plus CSRF token."""
    now = datetime.now(UTC)
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.startswith(API_TOKEN_PREFIX):
        user = store.find_token_user(token=token.strip(), now=now)
        if user is None:
            raise _unauthorized("invalid API token")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise _unauthorized("not logged in")
    user = store.find_session_user(token=cookie, now=now)
    if user is None:
        raise _unauthorized("session expired; log in again")
    if request.method not in SAFE_METHODS and not csrf_matches(
        cookie, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")
    return user


CurrentUser = Annotated[UserInfo, Depends(current_user)]


def admin_user(user: CurrentUser) -> UserInfo:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators manage users")
    return user


AdminUser = Annotated[UserInfo, Depends(admin_user)]


def owned_source(source_id: ResourceId, user: CurrentUser, store: StoreDep) -> SourceInfo:
    """The caller's source; another user's is 'not found', never 'forbidden' (no probing)."""
    try:
        source = store.get_source_by_id(source_id=source_id)
    except NotFoundError:
        source = None
    if source is None or source.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such source")
    return source


OwnedSource = Annotated[SourceInfo, Depends(owned_source)]
