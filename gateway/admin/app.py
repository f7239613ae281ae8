"""The FastAPI application: health and readiness probes for operators and Kubernetes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from gateway.store import MailStore


def get_store(request: Request) -> MailStore:
    store: MailStore = request.app.state.store
    return store


StoreDep = Annotated[MailStore, Depends(get_store)]


def create_app(store: MailStore) -> FastAPI:
    """Build the app around an injected store (no globals, so tests build their own)."""
    app = FastAPI(title="Mail gateway admin", version="0.1.0")
    app.state.store = store

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(store: StoreDep) -> dict[str, object]:
        """Readiness: the database answers (and nothing about what it holds: the probe is
        open to anyone who reaches the port)."""
        store.check_database()
        return {"status": "ok"}

    return app
