"""Connect an account by OAuth2 from the panel: list the configured providers, start the
authorization-code flow, and take the provider's redirect back (`/api/oauth2/callback`).

Between start and callback the pending sign-in (state, PKCE verifier, owner, what to create)
lives in a cookie sealed with the gateway's secret key: any replica can finish it, and the
browser can neither read nor alter it. It is SameSite=Lax and limited to the callback path,
because the redirect from the provider is a cross-site navigation, on which the Strict
session cookie is not sent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import Field

from gateway.admin.deps import CurrentUser, ServicesDep, StoreDep
from gateway.admin.schemas import Model
from gateway.oauth2.connect import save_connected_account
from gateway.oauth2.flow import (
    CALLBACK_PATH,
    AuthorizationError,
    PendingAuthorization,
    finish_authorization,
    start_authorization,
)
from gateway.oauth2.providers import ProviderError
from gateway.settings import Settings
from gateway.store import AlreadyExistsError, InvalidOperationError, NotFoundError

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/oauth2", tags=["oauth2"])

PENDING_COOKIE = "gateway_oauth2"
# Time to sign in and consent at the provider.
PENDING_MAX_AGE = 600


class ProviderPublic(Model):
    name: str
    title: str
    protocols: list[Literal["imap", "pop3"]]


class ConnectRequest(Model):
    provider: str = Field(min_length=1, max_length=64)
    protocol: Literal["imap", "pop3"] = "imap"
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^/]+$",
        description="Name of the new source; default: the account's address.",
    )
    login_hint: str | None = Field(default=None, max_length=320)
    source_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="Reconnect this source instead."
    )


class ConnectStarted(Model):
    authorization_url: str


def redirect_uri(settings: Settings, request: Request) -> str:
    """The callback URL the provider sends the browser back to: registered at the provider,
    so it comes from the configured public URL when there is one."""
    base = settings.oauth2_redirect_base_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


@router.get("/providers")
def list_providers(user: CurrentUser, services: ServicesDep) -> list[ProviderPublic]:
    """The OAuth2 providers the operator configured (client id and secret set)."""
    del user
    return [
        ProviderPublic(
            name=provider.name,
            title=provider.title,
            protocols=[
                protocol
                for protocol, server in (("imap", provider.imap), ("pop3", provider.pop3))
                if server is not None
            ],
        )
        for provider in services.store.oauth2_providers.configured()
    ]


@router.post("/connect", responses={404: {"description": "No such provider or source"}})
async def start_connect(
    body: ConnectRequest,
    request: Request,
    response: Response,
    user: CurrentUser,
    services: ServicesDep,
) -> ConnectStarted:
    """Start signing in at the provider: send the browser to `authorization_url`."""
    store = services.store
    if body.source_id is not None:
        try:
            source = await run_in_threadpool(store.get_source_by_id, source_id=body.source_id)
        except NotFoundError:
            source = None
        if source is None or source.user_id != user.id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such source")
    try:
        provider = await run_in_threadpool(store.oauth2_providers.get, body.provider)
    except ProviderError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    url, pending = start_authorization(
        provider, redirect_uri(services.settings, request), login_hint=body.login_hint
    )
    pending = replace(
        pending,
        user_id=user.id,
        name=body.name or "",
        protocol=body.protocol,
        source_id=body.source_id,
    )
    response.set_cookie(
        PENDING_COOKIE,
        store.seal(pending.to_json()),
        max_age=PENDING_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=CALLBACK_PATH,
    )
    log.info("event=oauth2_connect_started user_id=%d provider=%s", user.id, provider.name)
    return ConnectStarted(authorization_url=url)


@router.get("/callback", response_class=RedirectResponse, status_code=303)
async def finish_connect(request: Request, store: StoreDep) -> RedirectResponse:
    """Where the provider sends the browser back; then on to the panel, with the outcome."""
    sealed = request.cookies.get(PENDING_COOKIE)
    text = store.unseal(sealed, max_age_seconds=PENDING_MAX_AGE) if sealed else None
    if text is None:
        return _back_to_panel(error="the sign-in expired or was started elsewhere; try again")
    pending = PendingAuthorization.from_json(text)
    try:
        provider = await run_in_threadpool(store.oauth2_providers.get, pending.provider)
        account = await run_in_threadpool(finish_authorization, provider, pending, str(request.url))
        source = await run_in_threadpool(save_connected_account, store, provider, pending, account)
    except (
        ProviderError,
        AuthorizationError,
        AlreadyExistsError,
        InvalidOperationError,
        NotFoundError,
    ) as error:
        log.warning(
            "event=oauth2_connect_failed user_id=%d provider=%s reason=%r",
            pending.user_id,
            pending.provider,
            str(error),
        )
        return _back_to_panel(error=str(error))
    log.info(
        "event=oauth2_connected user_id=%d provider=%s source_id=%d reconnect=%s",
        pending.user_id,
        provider.name,
        source.id,
        pending.source_id is not None,
    )
    return _back_to_panel(connected=source.name)


def _back_to_panel(*, error: str | None = None, connected: str | None = None) -> RedirectResponse:
    # The panel reads the outcome from its hash route (web/oauth2_connect.js).
    if error is not None:
        target = f"/#/oauth2?error={quote(error)}"
    else:
        target = f"/#/oauth2?connected={quote(connected or '')}"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(PENDING_COOKIE, path=CALLBACK_PATH)
    return response
