"""The FastAPI application: JSON API under /api, probes, /metrics, the web panel at /.

Everything it works with is injected by whoever builds it (`gateway serve`, tests): no
settings, stores or schedulers are created at import time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from gateway.admin.deps import (
    AdminServices,
    StoreDep,
    SyncRequester,
    get_store,
    unprocessable,
)
from gateway.admin.metrics import GatewayMetrics
from gateway.admin.routes import (
    auth,
    health,
    identities,
    queue,
    sources,
    suggest,
    tokens,
    users,
)
from gateway.auth_throttle import AuthThrottle, policy_from_settings
from gateway.mail_settings.suggest import SettingsSuggester
from gateway.settings import Settings
from gateway.store import InvalidOperationError, MailStore

__all__ = ["StoreDep", "create_app", "get_store", "web_directory"]


# The panel loads nothing but its own files and talks only to this server.
PANEL_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def web_directory() -> Path:
    """The panel's files, shipped inside the package (`web/` in the source tree)."""
    return Path(str(files("gateway.web")))


def _serve_api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files installed with the package (swagger-ui-py ships them),
    not from a CDN: the admin port must work offline."""
    assets = Path(str(files("swagger_ui"))) / "static"
    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Mail gateway admin API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="data:,",
        )


def create_app(
    store: MailStore,
    settings: Settings,
    *,
    scheduler: SyncRequester | None = None,
    metrics: GatewayMetrics | None = None,
    suggester: SettingsSuggester | None = None,
    throttle: AuthThrottle | None = None,
) -> FastAPI:
    """Build the app around injected services (so tests build their own)."""
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Mail gateway admin",
        version="0.1.0",
        description="Manage users, sources (external POP3/IMAP accounts), identities and API "
        "tokens. Log in with POST /api/login (cookie + X-CSRF-Token) or send "
        "`Authorization: Bearer <API token>`.",
    )
    app.state.services = AdminServices(
        store=store,
        settings=settings,
        scheduler=scheduler,
        throttle=throttle or AuthThrottle(store, policy_from_settings(settings)),
        metrics=metrics or GatewayMetrics(store),
        suggester=suggester or SettingsSuggester(),
    )
    for module in (health, auth, users, sources, suggest, identities, queue, tokens):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/docs"):  # Swagger UI starts with an inline script
            response.headers["Content-Security-Policy"] = PANEL_CSP
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        """FastAPI's 422 without the `input` it echoes: a check on a whole body (security
        none without allow_plaintext…) would otherwise send back the password it holds."""
        detail = [
            {key: value for key, value in problem.items() if key in ("loc", "msg", "type")}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    @app.exception_handler(InvalidOperationError)
    async def refused_by_the_store(request: Request, error: InvalidOperationError) -> Response:
        """What the store refuses (a name it does not allow…) is the client's mistake: 422."""
        exception = unprocessable(str(error))
        return JSONResponse({"detail": exception.detail}, status_code=exception.status_code)

    _serve_api_docs(app)
    app.mount("/", StaticFiles(directory=web_directory(), html=True), name="web")
    return app
