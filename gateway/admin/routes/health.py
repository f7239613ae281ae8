"""Probes for operators and Kubernetes, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format: sources by state, fetch counters, sync and IMAP latencies."""
    body = await run_in_threadpool(generate_latest, services.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
