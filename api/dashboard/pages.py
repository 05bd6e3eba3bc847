"""The dashboard's pages: projects, a project's builds and memory, the new-build form and a
build's page with the fragments htmx refreshes on it. They read through the same functions as
the JSON routes, so they show what the API answers and refuse what it refuses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import plans, projects, queries
from api.dashboard.assets import fragment, htmx_file, page
from api.dashboard.errors import DashboardRoute
from api.dashboard.forms import new_key
from api.dashboard.listing import list_projects
from api.dashboard.memories import Search, section
from api.deps import (
    ArtifactsDep,
    CurrentUser,
    MemoryDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
)
from api.errors import ServiceError
from api.routes.builds import BuildId
from api.schemas.fields import Slug
from cofounder.memory import Scope
from cofounder.payloads import BuildStatus

router = APIRouter(prefix="/app", include_in_schema=False, route_class=DashboardRoute)
root = APIRouter(include_in_schema=False)

LIST_LIMIT = 100  # builds a project's page lists
DIFF_SHOWN = 200_000  # characters of a pull request's diff rendered; the API has the rest


@root.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/vendor/htmx.min.js")
async def htmx() -> Response:
    return htmx_file()


def signed_in(request: Request, user: CurrentUser) -> dict[str, Any]:
    """What every page shows of who is signed in (the local user in dev mode)."""
    return {"user": user.id, "dev_mode": request.app.state.clerk is None}


@router.get("")
async def projects_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> HTMLResponse:
    rows = await list_projects(session, settings, user.id)
    return page(request, "projects.html", {**signed_in(request, user), "projects": rows})


@router.get("/projects/{project}")
async def builds_page(
    request: Request,
    project: Slug,
    session: SessionDep,
    store: MemoryDep,
    user: CurrentUser,
    status: Annotated[BuildStatus | Literal[""] | None, Query()] = None,
    q: Search = "",
) -> HTMLResponse:
    found = await projects.load_project(session, user.id, project)
    chosen = BuildStatus(status) if status else None
    builds = await queries.list_builds(session, user.id, project, chosen, LIST_LIMIT)
    remembered = await section(store, Scope(owner=user.id, project=project), q)
    context = {
        **signed_in(request, user),
        **remembered,  # the memory section's: `q` searches it
        "project": found,
        "builds": builds,
        "status": chosen,
        "statuses": list(BuildStatus),
    }
    return page(request, "builds.html", context)


@router.get("/new")
async def new_build_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    project: Annotated[str, Query(max_length=63)] = "",
) -> HTMLResponse:
    known = await list_projects(session, settings, user.id)
    values = {"project": project, "budget_usd": f"{settings.default_budget_usd:g}"}
    context = {
        **signed_in(request, user),
        "projects": known,
        "values": values,
        "key": new_key(),
        "default_budget": settings.default_budget_usd,
    }
    return page(request, "new_build.html", context)


@router.get("/builds/{build_id}")
async def build_page(
    request: Request,
    build_id: BuildId,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> HTMLResponse:
    build = await queries.live_build(session, client, user.id, build_id)
    pr = await _pull_request(session, user.id, build_id)
    context = {**signed_in(request, user), "build": build, "build_id": build_id, "pr": pr}
    return page(request, "build.html", {**context, "key": new_key(), "oob": False})


@router.get("/builds/{build_id}/overview")
async def overview(
    request: Request, build_id: BuildId, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> HTMLResponse:
    build = await queries.live_build(session, client, user.id, build_id)
    # `oob`: the header's current step comes along, swapped out of band.
    context = {"build": build, "build_id": build_id, "key": new_key(), "oob": True}
    return fragment(request, "_overview.html", context)


@router.get("/builds/{build_id}/plan")
async def plan(
    request: Request,
    build_id: BuildId,
    session: SessionDep,
    client: TemporalDep,
    artifacts: ArtifactsDep,
    user: CurrentUser,
) -> HTMLResponse:
    build = await queries.load_build(session, user.id, build_id)  # another owner's: 404
    context: dict[str, Any] = {"build": build, "plan": None, "waiting": None, "key": new_key()}
    try:
        context["plan"] = await plans.load_plan(session, client, artifacts, user.id, build_id)
    except ServiceError as err:
        context["waiting"] = err.detail  # "no plan yet", in the API's words
    return fragment(request, "_plan.html", context)


@router.get("/builds/{build_id}/pull-request")
async def pull_request(
    request: Request, build_id: BuildId, session: SessionDep, user: CurrentUser
) -> HTMLResponse:
    build = await queries.load_build(session, user.id, build_id)  # another owner's: 404
    pr = await _pull_request(session, user.id, build_id)
    return fragment(request, "_pull_request.html", {"build": build, "pr": pr})


async def _pull_request(session: SessionDep, owner: str, build_id: str) -> dict[str, Any] | None:
    """The build's pull request with its diff cut to what a page shows; None until it has one."""
    try:
        row = await queries.load_pull_request(session, owner, build_id)
    except ServiceError:
        return None
    diff = row.diff[:DIFF_SHOWN]
    return {"row": row, "diff_lines": diff.splitlines(), "cut": len(row.diff) > DIFF_SHOWN}
