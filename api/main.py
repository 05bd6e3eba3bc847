"""The HTTP front door: starts, lists, follows and steers builds (OpenAPI at /docs)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from activities.billing.errors import BillingError, BillingRefused
from activities.billing.stripe_api import StripeBilling
from activities.github.app import github_app
from api import dashboard
from api.admission import Refused
from api.auth import clerk_verifier
from api.errors import ServiceError
from api.event_hub import EventHub
from api.ratelimit import LIMIT_RESPONSES, limit_mutations, open_limiter
from api.routes import admin, billing, builds, health, memories, metrics, projects, webhooks
from cofounder import cloudwatch
from cofounder.artifacts import open_store
from cofounder.db import make_engine, make_sessionmaker
from cofounder.logging import REQUEST_ID_HEADER, register_secrets, request_id
from cofounder.memory import MemoryStore
from cofounder.memory.stores import open_memory
from cofounder.settings import Settings
from cofounder.temporal import connect

log = structlog.get_logger()

# The methods an Allow header can name (OPTIONS too, should a route ever answer it).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    """The API app; pass `client` to reuse a Temporal client (tests), else it connects on start.

    The database schema comes from Alembic (`cofounder db upgrade`), never from here.
    """
    settings = settings or Settings()
    register_secrets(settings)  # its secrets are masked in every log line from here on

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        limiter = open_limiter(settings)  # None: no rate limit
        stripe: StripeBilling | None = None
        hub: EventHub | None = None
        memory: MemoryStore | None = None
        try:
            app.state.settings = settings
            app.state.limiter = limiter
            app.state.sessions = make_sessionmaker(engine)
            app.state.event_hub = hub = EventHub(app.state.sessions)
            app.state.temporal = client or await connect(settings)
            # One store for the app's life: an S3 store's boto3 client is made once, not per read.
            app.state.artifacts = open_store(settings)
            # Project memory as the worker keeps it: what the founder sees and removes.
            app.state.memory = memory = open_memory(settings, app.state.sessions)
            app.state.github = github_app(settings)  # None: the App cannot create repositories
            app.state.clerk = await clerk_verifier(settings)  # None: dev mode, the local user
            stripe = StripeBilling.from_settings(settings)  # None: no billing
            app.state.stripe = stripe
            log.info("api started", task_queue=settings.task_queue)
            async with cloudwatch.publishing(settings):  # nothing without a namespace
                yield
        finally:
            if hub is not None:
                await hub.aclose()
            if memory is not None:
                await memory.close()
            if limiter is not None:
                await limiter.aclose()
            if stripe is not None:
                await stripe.aclose()
            await engine.dispose()

    app = FastAPI(
        title="cofounder",
        summary="Turns a founder's goal into tested code in a pull request.",
        version="0.1.0",
        lifespan=lifespan,
    )
    # A user's mutating requests are rate limited; webhooks (no user: their signature proves
    # the sender) and the health probes are not.
    limited = [Depends(limit_mutations)]
    app.include_router(builds.router, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(health.router)
    app.include_router(metrics.router)  # scraped, not limited
    app.include_router(projects.router, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(memories.router, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(projects.installations, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(billing.router, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(admin.router, dependencies=limited, responses=LIMIT_RESPONSES)
    app.include_router(webhooks.router)
    dashboard.install(app)  # the web pages at /app, out of the OpenAPI schema
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(BillingError, _stripe_failed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(RequestContext)
    if settings.allowed_origins:
        # Outermost, so preflights and refusals alike carry the CORS headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER],
        )
    return app


async def _service_error(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ServiceError)
    body = err.body() if isinstance(err, Refused) else {"detail": err.detail}
    return JSONResponse(body, status_code=err.status_code, headers=err.headers)


async def _stripe_failed(_: Request, err: Exception) -> JSONResponse:
    # Unavailable: try again (a webhook's retry applies it); refused: our configuration is wrong.
    status = 502 if isinstance(err, BillingRefused) else 503
    log.error("stripe failed", error=str(err))
    return JSONResponse({"detail": str(err)}, status_code=status)


async def _database_down(_: Request, err: Exception) -> JSONResponse:
    log.error("database error", error=str(err))
    return JSONResponse({"detail": "the database is unavailable; try again"}, status_code=503)


async def _http_error(request: Request, err: Exception) -> Response:
    """FastAPI's answer, except that a 405 names every method the path supports: Starlette
    names only those of the first route matching the path (POST alone on /api/builds)."""
    assert isinstance(err, HTTPException)
    if err.status_code == 405:
        allow = ", ".join(_allowed_methods(request))
        err = HTTPException(405, err.detail, headers={**(err.headers or {}), "Allow": allow})
    return await http_exception_handler(request, err)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this request's path, as the router itself decides."""
    scope = request.scope
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    allowed = []
    for method in HTTP_METHODS:
        # A fresh scope per question: matching writes into the scope it is given.
        probe = {
            "type": "http",
            "method": method,
            "path": scope["path"],
            "root_path": root_path,
            "headers": scope["headers"],
        }
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


class RequestContext:
    """Binds a correlation id (the caller's X-Request-ID, or a new one) to every log line of a
    request, echoes it in the response, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode())
        rid = request_id(sent.decode("latin-1") if sent else None)
        scope.setdefault("state", {})["request_id"] = rid
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.clear_contextvars()
