"""Probes for operators and Kubernetes, and the Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from gateway.admin.deps import ServicesDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: StoreDep) -> dict[str, object]:
    """Readiness: the database answers (and nothing about what it holds: the probe is
    open to anyone who reaches the port)."""
    store.check_database()
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={401: {"description": "GATEWAY_METRICS_TOKEN is set and was not presented"}},
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: sources by state, fetch counters, sync and IMAP latencies,
    outbound queue depth. With GATEWAY_METRICS_TOKEN set, only for `Authorization: Bearer`
    with that token."""
    _check_metrics_token(request, services.settings.metrics_token)
    body = await run_in_threadpool(generate_latest, services.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_metrics_token(request: Request, expected: SecretStr | None) -> None:
    if expected is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken says nothing about how much of a guess was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "metrics need the bearer token set in GATEWAY_METRICS_TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
