"""The E2B control API of the double (`X-API-KEY`), answering with the shapes the SDK's generated
models parse (`Sandbox`, `SandboxDetail`, `ListedSandbox`, `Error`)."""

from __future__ import annotations

import asyncio
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles.e2b_state import Registry, Sandbox

CLIENT_ID = "e2b-double"
PAGE_LIMIT = 100


def error(status: int, message: str, error_code: str | None = None) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if error_code is not None:
        body["error_code"] = error_code
    return JSONResponse(body, status)


def created(sandbox: Sandbox, envd_version: str, status: int = 201) -> Response:
    """The `Sandbox` model: what create and connect return."""
    return JSONResponse(
        {
            "sandboxID": sandbox.sandbox_id,
            "templateID": sandbox.template_id,
            "alias": sandbox.template_id,
            "clientID": CLIENT_ID,
            "envdVersion": envd_version,
            "envdAccessToken": sandbox.access_token,
            "trafficAccessToken": None,
            "domain": None,
        },
        status,
    )


def listed(sandbox: Sandbox, envd_version: str) -> dict[str, Any]:
    """The `ListedSandbox` model; `SandboxDetail` adds a few fields to it."""
    return {
        "sandboxID": sandbox.sandbox_id,
        "templateID": sandbox.template_id,
        "alias": sandbox.template_id,
        "clientID": CLIENT_ID,
        "startedAt": sandbox.started_at.isoformat(),
        "endAt": sandbox.end_at.isoformat(),
        "cpuCount": 2,
        "memoryMB": 512,
        "diskSizeMB": 2048,
        "state": sandbox.state,
        "envdVersion": envd_version,
        "metadata": sandbox.metadata,
    }


class ControlApi:
    """Route handlers over the registry; each one stands for one endpoint of the real API."""

    def __init__(self, registry: Registry, envd_version: str) -> None:
        self.registry = registry
        self.envd_version = envd_version

    async def create(self, request: Request) -> Response:
        body = await request.json()
        if not body.get("templateID"):
            return error(400, "templateID is required")
        sandbox = self.registry.create(body, request.headers.get("idempotency-key"))
        if sandbox is None:
            return error(
                422, "the key was used with another request", "idempotency_request_mismatch"
            )
        return created(sandbox, self.envd_version)

    async def connect(self, request: Request) -> Response:
        body = await request.json()
        sandbox_id = request.path_params["sandbox_id"]
        connected = self.registry.connect(sandbox_id, int(body.get("timeout", 300)))
        if connected is None:
            return error(404, f"sandbox {sandbox_id} not found")
        sandbox, resumed = connected
        return created(sandbox, self.envd_version, 201 if resumed else 200)

    async def pause(self, request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        match self.registry.pause(sandbox_id):
            case "missing":
                return error(404, f"sandbox {sandbox_id} not found")
            case "already":
                return error(409, f"sandbox {sandbox_id} is already paused")
        return Response(status_code=204)

    async def kill(self, request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        # Killing deletes the root dir, so it runs off the event loop.
        if not await asyncio.to_thread(self.registry.kill, sandbox_id):
            return error(404, f"sandbox {sandbox_id} not found")
        return Response(status_code=204)

    async def get(self, request: Request) -> Response:
        sandbox = self._live(request)
        if sandbox is None:
            return error(404, f"sandbox {request.path_params['sandbox_id']} not found")
        detail = listed(sandbox, self.envd_version) | {"envdAccessToken": sandbox.access_token}
        return JSONResponse(detail)

    async def set_timeout(self, request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        if not self.registry.set_timeout(sandbox_id, int((await request.json())["timeout"])):
            return error(404, f"sandbox {sandbox_id} not found")
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        query = request.query_params
        wanted = matching(query.get("metadata"), query.get("state"))
        self.registry.expire_due()
        found = [s for s in self.registry.sandboxes.values() if wanted(s)]
        found.sort(key=lambda s: s.started_at, reverse=query.get("order") != "asc")
        start = int(query.get("nextToken") or 0)
        limit = int(query.get("limit") or PAGE_LIMIT)
        page = found[start : start + limit]
        headers = {"x-next-token": str(start + limit)} if start + limit < len(found) else {}
        return JSONResponse([listed(s, self.envd_version) for s in page], headers=headers)

    def _live(self, request: Request) -> Sandbox | None:
        return self.registry.live(request.path_params["sandbox_id"])


def matching(metadata: str | None, states: str | None) -> Callable[[Sandbox], bool]:
    """The filter of `GET /v2/sandboxes`: every metadata pair matches, state among those asked
    (running and paused when none). The SDK quotes keys and values before url-encoding them."""
    pairs = {
        urllib.parse.unquote(k): urllib.parse.unquote(v)
        for k, v in urllib.parse.parse_qsl(metadata or "")
    }
    allowed = set(states.split(",")) if states else {"running", "paused"}

    def wanted(sandbox: Sandbox) -> bool:
        has_pairs = all(sandbox.metadata.get(k) == v for k, v in pairs.items())
        return sandbox.state in allowed and has_pairs

    return wanted


def control_app(registry: Registry, api_key: str, envd_version: str) -> Starlette:
    api = ControlApi(registry, envd_version)
    routes = [
        Route("/v2/sandboxes", api.create, methods=["POST"]),
        Route("/v2/sandboxes", api.list, methods=["GET"]),
        Route("/v2/sandboxes/{sandbox_id}/connect", api.connect, methods=["POST"]),
        Route("/sandboxes/{sandbox_id}/pause", api.pause, methods=["POST"]),
        Route("/sandboxes/{sandbox_id}/timeout", api.set_timeout, methods=["POST"]),
        Route("/sandboxes/{sandbox_id}", api.get, methods=["GET"]),
        Route("/sandboxes/{sandbox_id}", api.kill, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(ApiKeyCheck, api_key=api_key)])


class ApiKeyCheck(BaseHTTPMiddleware):
    """401 unless `X-API-KEY` is the double's key, before any route runs."""

    def __init__(self, app: Any, api_key: str) -> None:
        super().__init__(app)
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), self.api_key.encode()):
            return error(401, "Invalid API key")
        return await call_next(request)
