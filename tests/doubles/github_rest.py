"""The GitHub double's REST API outside pull requests: the App's endpoints behind its JWT,
repositories behind installation tokens, and the gate that tells the two apart.

Paths here are what follows `/api/v3`; the double strips that prefix before routing.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from tests.doubles.github_auth import AppJwt, token_of
from tests.doubles.github_shapes import Shapes, error
from tests.doubles.github_state import Registry, Repository

# The routes GitHub serves only to the App itself (githubkit sends its JWT to the same ones).
APP_ROUTE = re.compile(
    r"^/(app(/.*)?|(orgs|users)/[^/]+/installation|repos/[^/]+/[^/]+/installation)$"
)
CONVERTOR = re.compile(r":\w+}")


class Gate(BaseHTTPMiddleware):
    """Counts each request by route, then lets it through only with the App's JWT (App routes)
    or an unexpired installation token (the rest), which it leaves in `request.state.token`."""

    def __init__(
        self, app: Any, registry: Registry, app_jwt: AppJwt, routes: list[BaseRoute]
    ) -> None:
        super().__init__(app)
        self.registry, self.app_jwt, self.routes = registry, app_jwt, routes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        route = route_name(self.routes, request)
        self.registry.count(route)
        response = await self._checked(request, call_next)
        await asyncio.sleep(self.registry.holds.pop(route, 0))  # done, but not answered yet
        return response

    async def _checked(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        authorization = request.headers.get("authorization", "")
        if APP_ROUTE.match(request.url.path):
            problem = self.app_jwt.problem(authorization)
            if problem is not None:
                return error(401, problem)
        else:
            request.state.token = self.registry.valid_token(token_of(authorization))
            if request.state.token is None:
                return error(401, "Bad credentials")
        return await call_next(request)


def route_name(routes: list[BaseRoute], request: Request) -> str:
    """The route the request matches, as "METHOD /path/{param}" (its path when none does)."""
    for route in routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] == Match.FULL:
            # Named without convertors: "{number}", not "{number:int}".
            return f"{request.method} {CONVERTOR.sub('}', route.path)}"
    return f"{request.method} {request.url.path}"


async def http_error(request: Request, exc: Exception) -> Response:
    """No route, or no such method on it: GitHub's error body, not Starlette's plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error(status, "Not Found" if status == 404 else "Server Error")


async def json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when it is not one (GitHub answers 400)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def repository_of(registry: Registry, request: Request) -> Repository | None:
    """The repository in the path, when the request's token may use it."""
    params = request.path_params
    return registry.accessible(request.state.token, f"{params['owner']}/{params['repo']}")


def missing(resource: str, field: str) -> Response:
    return error(
        422, "Validation Failed", [{"resource": resource, "field": field, "code": "missing_field"}]
    )


class AppEndpoints:
    """What the App does with its JWT: see its installations and exchange tokens."""

    def __init__(self, registry: Registry, shapes: Shapes) -> None:
        self.registry, self.shapes = registry, shapes

    async def installations(self, request: Request) -> Response:
        found = sorted(self.registry.installations.values(), key=lambda i: i.installation_id)
        return JSONResponse([self.shapes.installation(i) for i in found])

    async def installation(self, request: Request) -> Response:
        found = self.registry.installations.get(request.path_params["installation_id"])
        if found is None:
            return error(404, "Not Found")
        return JSONResponse(self.shapes.installation(found))

    async def repo_installation(self, request: Request) -> Response:
        full_name = f"{request.path_params['owner']}/{request.path_params['repo']}"
        repo = self.registry.repositories.get(full_name)
        if repo is None:
            return error(404, "Not Found")
        return JSONResponse(self.shapes.installation(self.registry.installation_of(repo)))

    async def access_token(self, request: Request) -> Response:
        installation_id = request.path_params["installation_id"]
        if installation_id not in self.registry.installations:
            return error(404, "Not Found")
        body = await json_body(request)
        if body is None:
            return error(400, "Problems parsing JSON")
        token = self.registry.issue_token(installation_id, body.get("repositories"))
        if token is None:
            message = (
                "There is at least one repository that does not exist"
                " or is not accessible to the parent installation."
            )
            return error(422, message)
        return JSONResponse(self.shapes.token(token), 201)


class RepoEndpoints:
    """Repositories, as an installation sees them."""

    def __init__(self, registry: Registry, shapes: Shapes) -> None:
        self.registry, self.shapes = registry, shapes

    async def get(self, request: Request) -> Response:
        repo = repository_of(self.registry, request)
        if repo is None:
            return error(404, "Not Found")
        return JSONResponse(self.shapes.repository(repo, self.registry.installation_of(repo)))

    async def create_in_org(self, request: Request) -> Response:
        installation = self.registry.installations[request.state.token.installation_id]
        if installation.account_login != request.path_params["org"]:
            return error(404, "Not Found")
        body = await json_body(request)
        if body is None:
            return error(400, "Problems parsing JSON")
        if not body.get("name"):
            return missing("Repository", "name")
        full_name = f"{installation.account_login}/{body['name']}"
        if full_name in self.registry.repositories:
            taken = "name already exists on this account"
            problem = {
                "resource": "Repository",
                "code": "custom",
                "field": "name",
                "message": taken,
            }
            return error(422, "Repository creation failed.", [problem])
        repo = await asyncio.to_thread(
            self.registry.create_repository, full_name, installation, body
        )
        return JSONResponse(self.shapes.repository(repo, installation), 201)
