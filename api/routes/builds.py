"""Builds: start one, follow it, list them, cancel one, decide its plan, read its pull request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api import queries, service
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.schemas import (
    ApprovalRequest,
    BuildCreate,
    BuildList,
    BuildOut,
    PullRequestOut,
    Slug,
)
from cofounder.payloads import ApprovalDecision, BuildStatus

router = APIRouter(prefix="/api/builds", tags=["builds"])

_ERRORS = {
    404: {"description": "No such build for this user."},
    409: {"description": "The build is not in a state that allows this."},
    503: {"description": "Temporal or the database is unavailable."},
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses={503: _ERRORS[503]})
async def create_build(
    body: BuildCreate,
    request: Request,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> BuildOut:
    """Start a build of `goal` in `project` (created on first use); it runs in the background.

    Answers 202 with the queued build; follow it with `GET /api/builds/{id}`.
    """
    request_id = getattr(request.state, "request_id", None)
    return await service.create_build(session, client, settings, user.id, body, request_id)


@router.get("")
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


@router.get("/{build_id}", responses={404: _ERRORS[404]})
async def get_build(
    build_id: str, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> BuildOut:
    """One build: its live phase, test attempt, cost and error while it runs; the record after."""
    return await queries.live_build(session, client, user.id, build_id)


@router.post(
    "/{build_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={k: _ERRORS[k] for k in (404, 409, 503)},
)
async def cancel_build(
    build_id: str, session: SessionDep, client: TemporalDep, user: CurrentUser
) -> BuildOut:
    """Ask a running build to stop; it winds down and ends `cancelled`. Safe to repeat."""
    return await service.cancel_build(session, client, user.id, build_id)


@router.post(
    "/{build_id}/approve",
    responses={**{k: _ERRORS[k] for k in (404, 409, 503)}, 504: {"description": "No answer."}},
)
async def approve_build(
    build_id: str,
    body: ApprovalRequest,
    session: SessionDep,
    client: TemporalDep,
    user: CurrentUser,
) -> BuildOut:
    """Approve (the build goes on) or reject (it is cancelled) a plan awaiting approval.

    Answers 409 with the reason when the build is not awaiting approval.
    """
    decision = ApprovalDecision(approved=body.approved, comment=body.comment)
    return await service.approve_build(session, client, user.id, build_id, decision)


@router.get("/{build_id}/pull-request", responses={404: _ERRORS[404]})
async def get_pull_request(build_id: str, session: SessionDep, user: CurrentUser) -> PullRequestOut:
    """The pull request a build opened, with its full diff; 404 until it has one."""
    pr = await queries.load_pull_request(session, user.id, build_id)
    return PullRequestOut.from_row(pr)
