"""The FastAPI application: ``create_app(settings)`` opens and migrates the store, wires the routes and,
while serving, runs the outbox relay in a background thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import PUBLIC_PATHS, default_deny, refuse_repeated_scalar_query, refuse_unstorable_text
from service.api.routes import (
    access_log,
    alerts,
    assessment,
    bundles,
    camera_configs,
    cameras,
    cases,
    events,
    exports,
    pages,
    setup,
    stats,
    tokens,
    webhooks,
)
from service.core.clock import Clock, utc_now
from service.core.config import Settings
from service.core.db import Database, open_database
from service.core.errors import ServiceError
from service.core.metrics import IngestCounters
from service.core.signing import bundle_signing_key
from service.core.throttle import AuthThrottle
from service.relay import Relay
from service.reminders import ReminderJob
from service.retention import AccessLogRetention

VERSION = "0.1.0"
_STATIC = Path(__file__).resolve().parent / "static"
_INGEST_PATH = "/api/v1/alerts"
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def content_security_policy(settings: Settings) -> str:
    """The pages' CSP: everything from this origin only; map tiles also from the configured tile host."""
    origin = settings.tile_origin
    return _CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {origin}") if origin else _CSP


class SecurityHeaders:
    """Pure ASGI (BaseHTTPMiddleware would buffer the SSE stream)."""

    def __init__(self, app: ASGIApp, csp: str = _CSP) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", self.csp),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class GracefulServer(uvicorn.Server):
    """Tells the app when shutdown begins, so that SSE streams end instead of holding shutdown up
    until ``timeout_graceful_shutdown`` cancels them."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self.config.app, "state", None)
        stopping = getattr(state, "stopping", None)
        if isinstance(stopping, threading.Event):
            stopping.set()
        await super().shutdown(sockets)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# FastAPI's answer when a body cannot even be decoded (not UTF-8); invalid JSON is already a 422.
_UNPARSABLE_BODY = "There was an error parsing the body"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this URL. Starlette's 405 names only the first route that
    matched the path, so GET /tokens hid POST /tokens from ``Allow`` (found by schemathesis)."""
    allowed = []
    for method in _METHODS:
        scope = dict(request.scope, method=method)
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and not request.url.path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    db: Database | None = None,
    relay: Relay | None = None,
) -> FastAPI:
    """Build the app. Migrates the database now, so a bad URL fails before anything listens.

    ``relay``: a prepared relay to run while serving (tests inject clocks); by default one is
    created when ``settings.relay_enabled``.
    """
    settings = settings or Settings()
    settings.check_startable()
    database = db or open_database(settings.database_url)
    owns_db = db is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = relay
        if active is None and settings.relay_enabled:
            active = Relay(database, settings, clock=clock)
        app.state.relay = active
        if active is not None:
            active.start()
        retention = AccessLogRetention(
            database, days=settings.access_log_days, every_s=settings.access_log_purge_every_s, clock=clock
        )
        app.state.retention = retention
        retention.start()
        reminders = ReminderJob(database, settings, clock=clock) if settings.reminders_enabled else None
        if reminders is not None:
            reminders.start()
        try:
            yield
        finally:
            if reminders is not None:
                reminders.stop()
            retention.close()
            if active is not None:
                active.close()
            if owns_db:
                database.dispose()

    app = FastAPI(
        title="streetwatch",
        version=VERSION,
        summary="Street-violation cases: ingest, review, dispatch, exports.",
        description=(
            "Every route needs `Authorization: Bearer <token>` (or the login cookie) except `/healthz` "
            "and the login page. Roles: camera (ingest, camera status, evidence upload), operator "
            "(review, dispatch, verify), officer (own team's dispatched cases), supervisor (operator + "
            "handle, outbox, metrics), admin (everything, tokens, webhooks). Text in paths, queries and "
            "JSON bodies must not contain NUL characters (422 `string_unstorable`); "
            "times lie between 1970 and 9000 UTC (422 `datetime_out_of_range`)."
        ),
        lifespan=lifespan,
        openapi_url=None,  # served by exports.openapi, behind auth; no CDN-backed docs UI
        docs_url=None,
        redoc_url=None,
        max_body_size=settings.max_body_bytes,
        dependencies=[Depends(default_deny), Depends(refuse_unstorable_text), Depends(refuse_repeated_scalar_query)],
    )
    app.state.settings = settings
    app.state.db = database
    app.state.clock = clock
    app.state.ingest_counters = IngestCounters()
    app.state.auth_throttle = AuthThrottle(
        max_failures=settings.auth_failures_max, window_s=settings.auth_failure_window_s, clock=clock
    )
    app.state.stopping = threading.Event()
    app.state.relay = relay
    app.state.bundle_key = bundle_signing_key(settings, database, now=clock())

    def wake_relay() -> None:
        active: Relay | None = app.state.relay
        if active is not None:
            active.wake()

    app.state.wake_relay = wake_relay

    app.include_router(alerts.router)
    app.include_router(alerts.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(cases.router)
    app.include_router(cases.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(exports.router)
    app.include_router(cameras.router)
    app.include_router(camera_configs.router)
    app.include_router(camera_configs.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(stats.router)
    app.include_router(events.router)
    app.include_router(tokens.router)
    app.include_router(webhooks.router)
    app.include_router(setup.router)
    app.include_router(assessment.router)
    app.include_router(bundles.router)
    app.include_router(access_log.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.add_middleware(SecurityHeaders, csp=content_security_policy(settings))

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> Response:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if request.url.path == _INGEST_PATH:
            app.state.ingest_counters.inc("invalid")
        # Not FastAPI's default: it echoes the offending input, which may itself be unserialisable
        # (Infinity, NaN) and would turn a 422 into a 500.
        detail = [
            {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
            for item in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 401 and _wants_html(request):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if error.status_code == 413 and request.url.path == _INGEST_PATH:
            app.state.ingest_counters.inc("too_large")
        if error.status_code == 405:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        if error.status_code == 400 and error.detail == _UNPARSABLE_BODY:
            # One answer for every unusable body (found by schemathesis: a non-UTF-8 body was an
            # undocumented 400 while invalid JSON was a 422).
            unparsable = [{"loc": ("body",), "msg": "body is not UTF-8 JSON", "type": "json_invalid"}]
            return await _invalid(request, RequestValidationError(unparsable))
        return await http_exception_handler(request, error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            for path in PUBLIC_PATHS:
                for operation in schema.get("paths", {}).get(path, {}).values():
                    operation.pop("security", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
