"""Project memory: what a project remembers (searched, or newest first), removing one memory,
and a convention or decision the founder states directly."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from api import memories
from api.deps import CurrentUser, MemoryDep, SessionDep
from api.schemas.errors import refusals
from api.schemas.fields import IdempotencyKey, Slug
from api.schemas.memories import MemoryCreate, MemoryList, MemoryOut

router = APIRouter(prefix="/api/projects", tags=["memories"])

# The stores' ids: a uuid4 in hex (the database's) or with hyphens (Mem0's). Anything else is
# a 422 before it reaches a store.
MemoryId = Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,64}$")]
QUERY_MAX = 500
OFFSET_MAX = 10_000  # as deep as Mem0 lists a scope

# Every refusal a route can send besides FastAPI's own 422, so /openapi.json lists them all.
_ERRORS = {
    # FastAPI's own answer to a body it cannot decode; a JSON syntax error is one of its 422s.
    400: "The body is not UTF-8 text.",
    404: "No such project for this user.",
    409: "The Idempotency-Key's memory has been removed.",
    503: "The database is unavailable.",
}


def _refusals(*codes: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    return refusals(_ERRORS, *codes, notes=notes)


@router.get("/{project}/memories", responses=_refusals(404, 503))
async def list_memories(
    project: Slug,
    session: SessionDep,
    memory: MemoryDep,
    user: CurrentUser,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=QUERY_MAX,
            description="Search: the memories sharing its words, best first (with a score).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> MemoryList:
    """What the project remembers, and recalls into its builds' plans: the decisions, outcomes,
    feedback and conventions of its builds, newest first, or a search's best matches."""
    scope = await memories.owned_scope(session, user.id, project)
    return MemoryList(memories=await memories.find(memory, scope, q, limit, offset))


@router.delete(
    "/{project}/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_refusals(404, 503, notes={404: "No such project, or no such memory in it."}),
)
async def delete_memory(
    project: Slug, memory_id: MemoryId, session: SessionDep, memory: MemoryDep, user: CurrentUser
) -> None:
    """Remove a memory for good: it is never listed or recalled into a plan again, and the
    build that made it does not bring it back."""
    scope = await memories.owned_scope(session, user.id, project)
    await memories.forget(memory, scope, memory_id)


@router.post(
    "/{project}/memories",
    status_code=status.HTTP_201_CREATED,
    responses=_refusals(400, 404, 409, 503),
)
async def add_memory(
    project: Slug,
    body: MemoryCreate,
    session: SessionDep,
    memory: MemoryDep,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> MemoryOut:
    """State how things are done in the project (a convention) or a decision taken; later
    builds recall it into their plans like what they learned themselves."""
    scope = await memories.owned_scope(session, user.id, project)
    return await memories.remember(memory, scope, body, idempotency_key)
