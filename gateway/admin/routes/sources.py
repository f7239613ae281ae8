"""Sources (external accounts) of the caller: CRUD, status, warnings, test, sync now, history.

A user only ever sees their own sources, administrators included: another user's source id
answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from gateway.admin.deps import CurrentUser, OwnedSource, ServicesDep, StoreDep, unprocessable
from gateway.admin.schemas import (
    ConnectionTestResult,
    SourceCreate,
    SourcePublic,
    SourceStatus,
    SourceUpdate,
    SourceWarningPublic,
    StepPublic,
    SyncQueued,
    SyncRunPublic,
)
from gateway.admin.source_status import budget_used, source_state, source_warnings
from gateway.fetch.budget import daily_limit
from gateway.fetch.connection_check import Credential, check_connection
from gateway.fetch.source_auth import saved_credential
from gateway.fetch.source_options import (
    InvalidSourceOptionError,
    parse_source_options,
    stored_options,
)
from gateway.store import AlreadyExistsError, InvalidOperationError, SourceInfo
from gateway.store.mail_store import MailStore

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/sources", tags=["sources"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such source"}}
CHART_WINDOW = timedelta(days=1)


def source_public(
    store: MailStore, source: SourceInfo, siblings: list[SourceInfo], now: datetime
) -> SourcePublic:
    sync_state = store.read_sync_state(source.id)
    used = budget_used(sync_state, now=now)
    holder, expires = store.source_lease(source.id)
    folders = (
        [folder.remote_name for folder in store.list_source_folders(source_id=source.id)]
        if source.protocol == "imap"
        else []
    )
    failing = source.consecutive_failures > 0
    return SourcePublic(
        id=source.id,
        name=source.name,
        protocol="imap" if source.protocol == "imap" else "pop3",
        host=source.host,
        port=source.port,
        security=source.security,
        username=source.username,
        poll_interval=source.poll_interval,
        auth_method="oauth2" if source.auth_method == "oauth2" else "password",
        oauth_provider=source.oauth_provider,
        enabled=source.enabled,
        options=source.options,
        status=SourceStatus(
            state=source_state(source, now=now),
            syncing=holder is not None and expires is not None and expires > now,
            last_attempt_at=source.last_attempt_at,
            last_success_at=source.last_success_at,
            last_error=source.last_error if failing else None,
            last_error_class=source.last_error_class if failing else None,
            last_error_at=source.last_attempt_at if failing else None,
            consecutive_failures=source.consecutive_failures,
            next_run_at=source.next_run_at,
            messages_fetched=source.messages_fetched,
            bytes_fetched=source.bytes_fetched,
            budget_bytes_used=used,
            budget_bytes_limit=daily_limit(source),
            folders=folders,
        ),
        warnings=[
            SourceWarningPublic(code=w.code, message=w.message)
            for w in source_warnings(source, siblings=siblings, budget_bytes_used=used, now=now)
        ],
    )


def _one_public(store: MailStore, source: SourceInfo) -> SourcePublic:
    siblings = store.list_sources(user_id=source.user_id)
    return source_public(store, source, siblings, datetime.now(UTC))


@router.get("")
def list_sources(user: CurrentUser, store: StoreDep) -> list[SourcePublic]:
    """The caller's sources with their status and warnings."""
    sources = store.list_sources(user_id=user.id)
    now = datetime.now(UTC)
    return [source_public(store, source, sources, now) for source in sources]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A source of that name exists"}},
)
def create_source(body: SourceCreate, user: CurrentUser, services: ServicesDep) -> SourcePublic:
    """Add an external account; its password is stored encrypted and never shown again."""
    store = services.store
    try:
        source = store.add_source(
            user_id=user.id,
            name=body.name,
            protocol=body.protocol,
            host=body.host,
            port=body.port,
            security=body.security,
            username=body.username,
            secret=body.password.get_secret_value(),
            poll_interval=body.poll_interval,
            options=stored_options(body.options),
        )
    except AlreadyExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, "you have a source of that name") from None
    log.info("event=admin_source_added user_id=%d source_id=%d", user.id, source.id)
    if services.scheduler is not None:
        services.scheduler.request_sync(source.id, reason="added")
    return _one_public(store, source)


@router.post("/test")
async def test_unsaved_source(body: SourceCreate, user: CurrentUser) -> ConnectionTestResult:
    """Test settings before saving them: which step failed, if any, within a bounded time."""
    draft = SourceInfo(
        id=0,
        user_id=user.id,
        name=body.name,
        protocol=body.protocol,
        host=body.host,
        port=body.port,
        security=body.security,
        username=body.username,
        options=stored_options(body.options),
        poll_interval=body.poll_interval,
        enabled=True,
        last_attempt_at=None,
        last_success_at=None,
        last_error=None,
        last_error_class=None,
        consecutive_failures=0,
        next_run_at=None,
        messages_fetched=0,
        bytes_fetched=0,
    )
    return await _test(draft, body.password.get_secret_value())


@router.get("/{source_id}", responses=NOT_FOUND)
def get_source(source: OwnedSource, store: StoreDep) -> SourcePublic:
    return _one_public(store, source)


@router.patch("/{source_id}", responses={**NOT_FOUND, 422: {"description": "Invalid setting"}})
def update_source(
    body: SourceUpdate, source: OwnedSource, user: CurrentUser, store: StoreDep
) -> SourcePublic:
    """Change settings; options, when given, replace the stored options as a whole."""
    options = None
    if body.options is not None:
        try:
            options = stored_options(parse_source_options(source.protocol, body.options))
        except InvalidSourceOptionError as error:
            raise unprocessable(str(error), "options") from None
    allow_plaintext = (options if options is not None else source.options).get("allow_plaintext")
    if (body.security or source.security) == "none" and allow_plaintext is not True:
        raise unprocessable("security none needs options.allow_plaintext true", "security")
    try:
        updated = store.update_source(
            source_id=source.id,
            host=body.host,
            port=body.port,
            security=body.security,
            username=body.username,
            poll_interval=body.poll_interval,
            enabled=body.enabled,
            options=options,
        )
        if body.password is not None:
            updated = store.set_source_secret(
                source_id=source.id, secret=body.password.get_secret_value()
            )
    except InvalidOperationError as error:
        raise unprocessable(str(error)) from None
    log.info("event=admin_source_changed user_id=%d source_id=%d", user.id, source.id)
    return _one_public(store, updated)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_source(source: OwnedSource, user: CurrentUser, store: StoreDep) -> None:
    """Remove a source; the mail already fetched from it stays."""
    store.remove_source(source_id=source.id)
    log.info("event=admin_source_removed user_id=%d source_id=%d", user.id, source.id)


@router.post("/{source_id}/test", responses=NOT_FOUND)
async def test_source(source: OwnedSource, store: StoreDep) -> ConnectionTestResult:
    """Test a saved source: DNS, TCP, TLS, certificate, authentication, a protocol command."""
    credential = await run_in_threadpool(saved_credential, store, source)
    return await _test(source, credential)


@router.post(
    "/{source_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 503: {"description": "Fetching is off"}},
)
def sync_source_now(source: OwnedSource, services: ServicesDep) -> SyncQueued:
    """Ask the running scheduler to sync this source now."""
    if services.scheduler is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "fetching is off (GATEWAY_FETCH_ENABLED=0)"
        )
    if not source.enabled:
        return SyncQueued(queued=False, detail="the source is disabled")
    services.scheduler.request_sync(source.id, reason="admin")
    return SyncQueued(queued=True, detail="sync requested")


@router.get("/{source_id}/history", responses=NOT_FOUND)
def source_history(source: OwnedSource, store: StoreDep) -> list[SyncRunPublic]:
    """Syncs of the last day: when, how long, how many messages (the panel's chart)."""
    since = datetime.now(UTC) - CHART_WINDOW
    return [
        SyncRunPublic(
            finished_at=run.finished_at,
            seconds=run.seconds,
            fetched=run.fetched,
            bytes=run.bytes,
            error_class=run.error_class,
        )
        for run in store.list_sync_runs(source_id=source.id, since=since)
    ]


async def _test(source: SourceInfo, password: Credential) -> ConnectionTestResult:
    result = await check_connection(source, password)
    log.info(
        "event=admin_source_tested source_id=%d ok=%s failed_step=%s",
        source.id,
        result.ok,
        result.failed_step,
    )
    return ConnectionTestResult(
        ok=result.ok,
        failed_step=result.failed_step,
        message=result.message,
        steps=[StepPublic(step=s.step, seconds=s.seconds) for s in result.passed],
        folders=result.folders,
        messages=result.messages,
    )
