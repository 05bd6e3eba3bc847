"""Builds: start one, follow it, list them, cancel one, read and decide its plan, read, merge or
close its pull request, give it feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.sse import EventSourceResponse

from api import controls, creation, events, merges, plans, queries
from api.deps import ArtifactsDep, CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.schemas.budget import BudgetRequest
from api.schemas.builds import BuildCreate, BuildList, BuildOut
from api.schemas.errors import refusals
from api.schemas.feedback import FeedbackCreate
from api.schemas.fields import IdempotencyKey, Slug
from api.schemas.plans import ApprovalRequest, PlanOut
from api.schemas.pull_requests import PullRequestOut
from cofounder.payloads import ApprovalDecision, BuildStatus

router = APIRouter(prefix="/api/builds", tags=["builds"])
# What FastAPI's own SSE responses send: no cache, and no buffering by a proxy such as nginx.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# One event on the wire, as OpenAPI 3.2 describes a stream's items.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}

# Ids the API makes fit this (and the column's 32 characters). Anything else, such as a NUL that
# PostgreSQL would refuse with a 500, is a 422 before it reaches a query.
BuildId = Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,32}$")]

# Every refusal a route can send besides FastAPI's own 422, so /openapi.json lists them all.
_ERRORS = {
    # FastAPI's own answer to a body it cannot decode; a JSON syntax error is one of its 422s.
    400: "The body is not UTF-8 text.",
    402: "The plan does not allow it (body: detail, limit, tier); a payment or upgrade does.",
    404: "No such build for this user.",
    409: "The build is not in a state that allows this.",
    429: "A plan limit that frees up with time (body: detail, limit, tier; Retry-After).",
    503: "Temporal or the database is unavailable.",
    504: "The build did not answer in time (is a worker running?).",
}


def _refusals(*codes: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    return refusals(_ERRORS, *codes, notes=notes)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_refusals(
        400,
        402,
        409,
        429,
        503,
        notes={409: "The Idempotency-Key was used with another body."},
    ),
)
async def create_build(
    body: BuildCreate,
    request: Request,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> BuildOut:
    """Start a build of `goal` in `project` (created on first use); it runs in the background.

    Answers 202 with the queued build; follow it with `GET /api/builds/{id}`. The owner's plan
    admits it or refuses it (429 for a limit that frees up with time, 402 for one that needs a
    payment or a bigger plan), and a refused build leaves nothing behind. An Idempotency-Key
    answers its first build for a day.
    """
    request_id = getattr(request.state, "request_id", None)
    return await creation.create_build(
        session, client, settings, user.id, body, request_id, idempotency_key
    )


@router.get("", responses=_refusals(503))
async def list_builds(
    session: SessionDep,
    user: CurrentUser,
    project: Annotated[Slug | None, Query(description="Only this project's builds.")] = None,
    status: Annotated[BuildStatus | None, Query(description="Only builds in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BuildList:
    """The caller's builds, newest first, with their statuses as recorded in the database."""
    builds = await queries.list_builds(session, user.id, project, status, limit)
    return BuildList(builds=builds)


@router.get("/{build_id}", responses=_refusals(404, 503))
async def get_build(
    build_id: BuildId, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> BuildOut:
    """One build: its live phase, test attempt, cost and error while it runs; the record after."""
    return await queries.live_build(session, client, user.id, build_id)


async def _owned(build_id: BuildId, session: SessionDep, user: CurrentUser) -> BuildOut:
    """The caller's build, checked before a stream starts (404 for anyone else's)."""
    build = await queries.load_build(session, user.id, build_id)
    await session.rollback()  # no connection held for the stream's length
    return build


@router.get(
    "/{build_id}/events",
    # Not FastAPI's SSE mode (response_class=EventSourceResponse with a generator): the route
    # answers the stream itself, encoded once per event (api/events.py).
    response_class=Response,
    # Refusals come before the stream, as JSON like every other route's.
    responses={
        code: {
            "description": entry["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
        for code, entry in _refusals(404, 503).items()
    }
    | {
        200: {
            "description": "The build's events, then `end`.",
            "content": {"text/event-stream": {"itemSchema": SSE_EVENT}},
        }
    },
)
async def follow_build(
    build: Annotated[BuildOut, Depends(_owned)],
    request: Request,
    client: TemporalDep,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=2**63 - 1, description="Resume after the last event seen."),
    ] = None,
    until: Annotated[
        events.Until,
        Query(description="End once the build has ended, or has settled (ended or in review)."),
    ] = "ended",
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="Start after this event id, as `Last-Event-ID` does (for a client that "
            "opens a new stream and cannot set headers, such as a browser's EventSource).",
        ),
    ] = None,
) -> EventSourceResponse:
    """The build's events as server-sent events, from the first or after `Last-Event-ID`,
    then `end`; keep-alive comments every 15 s. The event's name is its kind: `phase`,
    `turn`, `tool_call`, `command`, `output`, `cost`, `pull_request` or `iteration`; its id
    is the log's, increasing."""
    sessions = request.app.state.sessions
    handle = client.get_workflow_handle(build.workflow_id)
    stream = events.build_events(
        sessions,
        request.app.state.event_hub,
        build.id,
        max(last_event_id or 0, after or 0),
        until,
        running_again=lambda ended_run: queries.running_again(handle, ended_run),
    )
    # Each event encoded once for all its clients, and the events waiting for a client sent
    # in one write.
    return EventSourceResponse(stream, headers=SSE_HEADERS)


@router.post(
    "/{build_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_refusals(404, 409, 503),
)
async def cancel_build(
    build_id: BuildId, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> BuildOut:
    """Ask a running build to stop; it winds down and ends `cancelled`. Safe to repeat."""
    return await controls.cancel_build(session, client, user.id, build_id)


@router.get(
    "/{build_id}/plan",
    responses=_refusals(
        404,
        409,
        503,
        504,
        notes={409: "The build has no plan yet (or ended before it had one)."},
    ),
)
async def get_plan(
    build_id: BuildId,
    session: SessionDep,
    client: TemporalDep,
    artifacts: ArtifactsDep,
    user: CurrentUser,
) -> PlanOut:
    """The architect's plan: title, summary, steps, files, test command and estimated cost.

    Answers as soon as planning is done (while the plan awaits approval, and after the build
    ended); 409 until then.
    """
    return await plans.load_plan(session, client, artifacts, user.id, build_id)


@router.post(
    "/{build_id}/approve",
    responses=_refusals(400, 404, 409, 503, 504),
)
async def approve_build(
    build_id: BuildId,
    body: ApprovalRequest,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> BuildOut:
    """Approve (the build goes on) or reject (it is cancelled) a plan awaiting approval.

    Answers 409 with the reason when the build is not awaiting approval.
    """
    decision = ApprovalDecision(approved=body.approved, comment=body.comment)
    return await controls.approve_build(session, client, user.id, build_id, decision)


@router.get(
    "/{build_id}/pull-request",
    responses=_refusals(404, 503, notes={404: "No such build, or it has no pull request yet."}),
)
async def get_pull_request(
    build_id: BuildId, session: SessionDep, user: CurrentUser
) -> PullRequestOut:
    """The pull request a build opened, with its full diff; 404 until it has one."""
    pr = await queries.load_pull_request(session, user.id, build_id)
    return PullRequestOut.from_row(pr)


@router.post(
    "/{build_id}/pull-request/merge",
    responses=_refusals(
        404,
        409,
        503,
        notes={
            409: "The build has no pull request, or it conflicts with main (nothing is changed)."
        },
    ),
)
async def merge_pull_request(
    build_id: BuildId,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    user: CurrentUser,
) -> PullRequestOut:
    """Merge the build's pull request into main on the project's remote, so the project's next
    build starts from it: a fast-forward when main has not moved since the build started, else
    a merge commit. A build in review ends `merged`. Merging a merged pull request answers the
    same again.
    """
    return await merges.merge_pull_request(session, settings, client, user.id, build_id)


@router.post(
    "/{build_id}/pull-request/close",
    responses=_refusals(
        404,
        409,
        503,
        notes={409: "The build has no pull request, it is merged, or it is on GitHub."},
    ),
)
async def close_pull_request(
    build_id: BuildId, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> PullRequestOut:
    """Close the build's pull request without merging it; a build in review ends `closed`.
    Closing a closed pull request answers the same again. One on GitHub is closed there.
    """
    return await merges.close_pull_request(session, client, user.id, build_id)


@router.post(
    "/{build_id}/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_refusals(
        400,
        404,
        409,
        503,
        notes={409: "The build has ended, or has no pull request yet."},
    ),
)
async def add_feedback(
    build_id: BuildId,
    body: FeedbackCreate,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> BuildOut:
    """Feedback on the build's pull request, as a reviewer's comment: queued for the build's
    next iteration on it (one already running finishes first). Answers 202 with the build.
    """
    return await controls.add_feedback(
        session, client, user.id, build_id, body.body, idempotency_key
    )


@router.post("/{build_id}/budget", responses=_refusals(400, 402, 404, 409, 503, 504))
async def extend_budget(
    build_id: BuildId,
    body: BudgetRequest,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> BuildOut:
    """Raise the build's budget by `add_usd`; a build awaiting budget goes on if it is now
    enough. 409 once the build has ended; 402 past the plan's monthly spend."""
    return await controls.extend_budget(session, client, settings, user.id, build_id, body.add_usd)
