"""Liveness and readiness probes for the process supervisor and `cofounder dev`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client

from api.schemas.health import Health

router = APIRouter(tags=["health"])
log = structlog.get_logger()

CHECK_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz", response_model_exclude_none=True)
async def healthz() -> Health:
    """The process is up (it says nothing about its dependencies)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is down."}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers `SELECT 1` and Temporal answers a health check."""
    database, temporal = await asyncio.gather(
        _check(_database(request.app.state.sessions)),
        _check(_temporal(request.app.state.temporal)),
    )
    checks = {"database": database, "temporal": temporal}
    down = [name for name, result in checks.items() if result != "ok"]
    if not down:
        return JSONResponse(Health(checks=checks).model_dump(exclude_none=True))
    log.warning("not ready", **checks)
    detail = f"not ready: {' and '.join(down)} {'is' if len(down) == 1 else 'are'} down"
    body = Health(status="unavailable", checks=checks, detail=detail)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)


async def _database(sessions: async_sessionmaker) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


async def _temporal(client: Client) -> None:
    if not await client.service_client.check_health(timeout=CHECK_TIMEOUT):
        raise RuntimeError("health check answered not serving")


async def _check(probe: Awaitable[None]) -> str:
    """ "ok", or what went wrong (the exception's type; details go to the log)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT.total_seconds()):
            await probe
    except Exception as err:
        log.warning("readiness check failed", error=repr(err))
        return f"down: {type(err).__name__}"
    return "ok"
