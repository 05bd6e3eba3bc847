"""A project's memory on its page: the newest memories or a search's best, a remove button on
each, and a form to state a convention. Each calls what the JSON routes call (api/memories.py),
so the page shows and refuses what the API does; htmx gets the section back re-rendered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import memories
from api.dashboard.assets import fragment, is_htmx
from api.dashboard.errors import DashboardRoute, refusal
from api.dashboard.forms import Form, FormDep, FormRefused, new_key, optional, validated
from api.deps import CurrentUser, MemoryDep, SessionDep
from api.errors import ServiceError
from api.routes.memories import QUERY_MAX, MemoryId
from api.schemas.fields import Slug
from api.schemas.memories import MemoryCreate
from cofounder.memory import MemoryStore, Scope

router = APIRouter(prefix="/app", include_in_schema=False, route_class=DashboardRoute)

SHOWN = 20  # memories the section shows: the newest, or a search's best
TEMPLATE = "_memories.html"


async def owned_scope(project: Slug, session: SessionDep, user: CurrentUser) -> Scope:
    """The caller's project: another owner's (or none) answers 404 before a form is read."""
    return await memories.owned_scope(session, user.id, project)


OwnedScope = Annotated[Scope, Depends(owned_scope)]
Search = Annotated[str, Query(max_length=QUERY_MAX)]


async def section(store: MemoryStore, scope: Scope, q: str = "", **shown: Any) -> dict[str, Any]:
    """What the section shows: the memories (searched when `q` says something), an empty
    convention form with a fresh key, and `shown` (a notice, the form's values) over that."""
    query = q.strip() or None
    found = await memories.find(store, scope, query, SHOWN)
    context = {"slug": scope.project, "memories": found, "q": query or "", "key": new_key()}
    return {**context, "values": {}, "messages": [], "ok": True, **shown}


@router.get("/projects/{project}/memories")
async def memories_section(
    request: Request, scope: OwnedScope, store: MemoryDep, q: Search = ""
) -> HTMLResponse:
    return fragment(request, TEMPLATE, await section(store, scope, q))


@router.post("/projects/{project}/memories/{memory_id}/remove")
async def remove(
    request: Request, scope: OwnedScope, memory_id: MemoryId, form: FormDep, store: MemoryDep
) -> Response:
    q = form.get("q", "")[:QUERY_MAX]
    try:
        await memories.forget(store, scope, memory_id)
    except ServiceError as err:
        return await _refused(request, store, scope, err, q=q)
    if not is_htmx(request):
        return RedirectResponse(f"/app/projects/{scope.project}", status_code=303)
    done = ["Removed: later builds no longer recall it."]
    return fragment(request, TEMPLATE, await section(store, scope, q, messages=done))


@router.post("/projects/{project}/memories")
async def state_convention(
    request: Request, scope: OwnedScope, form: FormDep, store: MemoryDep
) -> Response:
    try:
        kind = form.get("kind") or "convention"
        body = validated(MemoryCreate, {"text": form.get("text", ""), "kind": kind})
        await memories.remember(store, scope, body, optional(form.get("key")))
    except ServiceError as err:
        return await _refused(request, store, scope, err, values=form)
    if not is_htmx(request):
        return RedirectResponse(f"/app/projects/{scope.project}", status_code=303)
    done = [f"Remembered: later builds of {scope.project} recall it into their plans."]
    return fragment(request, TEMPLATE, await section(store, scope, messages=done))


async def _refused(
    request: Request,
    store: MemoryStore,
    scope: Scope,
    err: ServiceError,
    q: str = "",
    values: Form | None = None,
) -> Response:
    """The refusal in the API's words: the section with it (the search and the form's values
    kept, to correct them) for htmx, an error page for a plain post."""
    messages = err.messages if isinstance(err, FormRefused) else [err.detail]
    if not is_htmx(request):
        return refusal(request, err.status_code, messages, err.headers)
    shown = {"messages": messages, "ok": False, "values": values or {}}
    context = await section(store, scope, q, **shown)
    return fragment(request, TEMPLATE, context, err.status_code)
