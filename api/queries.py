"""Reading builds: database rows, with the workflow's live view laid over a running one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from api.errors import NotFound
from api.schemas.builds import BuildOut, Cost, IterationOut, ProgressOut, StepOut
from cofounder.db import (
    Build,
    BuildEvent,
    LedgerEntry,
    Project,
    PullRequest,
    ReviewIteration,
)
from cofounder.db.models import as_utc
from cofounder.payloads import ITERATIONS_SHOWN, BuildStatus, BuildView
from workflows.build import BuildWorkflow

log = structlog.get_logger()

# A GET must stay fast when no worker is polling; the database row answers instead.
STATUS_QUERY_TIMEOUT = timedelta(seconds=1)
# How far the API's clock may be from Temporal's, which dates a parked build's view.
CLOCK_SKEW = timedelta(seconds=2)


def _select(owner: str) -> Select[Build, str, PullRequest]:
    # PullRequest is None in rows of builds without one (outer join).
    return (
        select(Build, Project.slug, PullRequest)
        .join(Project, Project.id == Build.project_id)
        .outerjoin(PullRequest, PullRequest.build_id == Build.id)
        .where(Build.owner == owner)
    )


async def load_build(session: AsyncSession, owner: str, build_id: str) -> BuildOut:
    """The build as recorded in the database, or NotFound."""
    row, project, pr = await load_row(session, owner, build_id)
    return BuildOut.from_row(row, project, pr)


async def load_row(
    session: AsyncSession, owner: str, build_id: str
) -> tuple[Build, str, PullRequest | None]:
    """The owner's build row with its project's slug and pull request, or NotFound."""
    row = (await session.execute(_select(owner).where(Build.id == build_id))).first()
    if row is None:
        raise NotFound(f"build {build_id} not found")
    return row[0], row[1], row[2]


async def _with_ledger(session: AsyncSession, build: BuildOut) -> BuildOut:
    """An ended build with what the ledger says it spent per role (in its budget) and per step."""
    if build.budget is not None:
        spent = await _spent_by(session, build.id, "role")
        by_role = {role: cost / 1e6 for role, cost, *_ in spent}
        budget = build.budget.model_copy(update={"spent_by_role_usd": by_role})
        build = build.model_copy(update={"budget": budget})
    steps = []
    for number, cost, tokens_in, tokens_out in await _spent_by(session, build.id, "step"):
        if number is not None:
            used = Cost.of(cost, tokens_in, tokens_out)
            steps.append(StepOut(number=number, title=None, status=None, attempts=None, cost=used))
    iterations = await _iterations(session, build.id)
    update = {"steps": sorted(steps, key=lambda step: step.number), "iterations": iterations}
    return build.model_copy(update=update)


async def _iterations(session: AsyncSession, build_id: str) -> list[IterationOut]:
    """The review session's iterations as published (the latest ITERATIONS_SHOWN)."""
    query = (
        select(ReviewIteration)
        .where(ReviewIteration.build_id == build_id)
        .order_by(ReviewIteration.number.desc())
        .limit(ITERATIONS_SHOWN)
    )
    rows = reversed((await session.scalars(query)).all())
    return [IterationOut.recorded(row) for row in rows]


async def _spent_by(session: AsyncSession, build_id: str, column: str) -> list[Any]:
    """The build's ledger summed per `column`: (value, cost, input tokens, output tokens)."""
    key = getattr(LedgerEntry, column)
    query = (
        select(
            key,
            func.sum(LedgerEntry.cost_micro_usd),
            func.sum(LedgerEntry.input_tokens),
            func.sum(LedgerEntry.output_tokens),
        )
        .where(LedgerEntry.build_id == build_id)
        .group_by(key)
    )
    return [(value, int(c), int(i), int(o)) for value, c, i, o in await session.execute(query)]


async def list_builds(
    session: AsyncSession,
    owner: str,
    project: str | None,
    status: BuildStatus | None,
    limit: int,
) -> list[BuildOut]:
    """The owner's builds as recorded in the database, newest first."""
    query = _select(owner)
    if project is not None:
        query = query.where(Project.slug == project)
    if status is not None:
        query = query.where(Build.status == status.value)
    query = query.order_by(Build.created_at.desc(), Build.id.desc()).limit(limit)
    return [
        BuildOut.from_row(row[0], row[1], row[2]) for row in (await session.execute(query)).all()
    ]


async def live_build(session: AsyncSession, client: Client, owner: str, build_id: str) -> BuildOut:
    """The build with the workflow's live view while it runs; a finished row is authoritative
    unless an operator has reset the workflow since."""
    row, project, pr = await load_row(session, owner, build_id)
    build = BuildOut.from_row(row, project, pr)
    events = (
        await session.scalars(select(BuildEvent).where(BuildEvent.build_id == build_id))
    ).all()
    handle = client.get_workflow_handle(build.workflow_id)
    view = parked_view(row)
    if view is None and (not build.status.terminal or await running_again(handle)):
        view = await _live_view(handle, build_id)
    if view is not None:
        build = build.with_view(view)
    else:
        build = await _with_ledger(session, build)
    story = run_story(events, build.run_id or "")
    if not story and view is not None:
        # A run that has recorded nothing yet: it goes on from the latest recorded run, whose
        # ending (if any) is not part of its story.
        story = run_story(events, _latest_run(events))
        while story and BuildStatus(story[-1].status).terminal:
            story.pop()
    build.progress = [ProgressOut.model_validate(event) for event in story]
    return build


def run_story(events: Sequence[BuildEvent], run_id: str) -> list[BuildEvent]:
    """Run `run_id`'s phase changes, after those of the runs it came from (a reset's base up to
    the reset point, the run it continued), in order. Nothing when the run recorded none."""
    runs: dict[str, list[BuildEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.seq):
        runs[event.run_id].append(event)
    story: list[BuildEvent] = []
    before: int | None = None
    current: str | None = run_id
    while current is not None and current in runs:
        own = runs.pop(current)  # popped: a malformed parent link cannot loop
        story[:0] = [e for e in own if before is None or e.seq < before]
        before, current = own[0].seq, own[0].parent_run_id
    return story


def _latest_run(events: Sequence[BuildEvent]) -> str:
    return max(events, key=lambda e: e.at).run_id if events else ""


async def running_again(handle: WorkflowHandle[Any, Any], ended_run: str | None = None) -> bool:
    """Whether a build recorded as finished runs again (an operator reset it): its workflow
    runs, in another run than `ended_run` (the one that recorded the ending, which may still
    be winding down), when that is known."""
    try:
        description = await handle.describe(rpc_timeout=STATUS_QUERY_TIMEOUT)
    except Exception as err:
        log.debug("describe failed; answering from the database", workflow=handle.id, error=err)
        return False
    if description.status != WorkflowExecutionStatus.RUNNING:
        return False
    return not ended_run or description.run_id != ended_run


def parked_view(row: Build) -> BuildView | None:
    """The view a parked build recorded with its phase, when nothing was sent to it since.

    Asking the workflow instead would make a worker replay a build it no longer caches, which
    with thousands of builds in review is most of them. A view not clearly newer than the last
    signal or update the API sent may predate it (a raised budget, queued feedback): then the
    workflow answers."""
    if row.view is None or not BuildStatus(row.status).parked or row.status_at is None:
        return None
    if row.steered_at is not None and as_utc(row.status_at) <= as_utc(row.steered_at) + CLOCK_SKEW:
        return None
    return kept_view(row)


def kept_view(row: Build) -> BuildView | None:
    """The live view the row kept with its last parked phase; None while work runs."""
    return None if row.view is None else BuildView.model_validate_json(row.view)


async def _live_view(handle: WorkflowHandle[Any, Any], build_id: str) -> BuildView | None:
    try:
        return await handle.query(BuildWorkflow.status, rpc_timeout=STATUS_QUERY_TIMEOUT)
    except Exception as err:
        # No worker yet, a closed workflow, Temporal down: the row is the best answer we have.
        log.debug("status query failed; answering from the database", build_id=build_id, error=err)
        return None


async def load_pull_request(session: AsyncSession, owner: str, build_id: str) -> PullRequest:
    """The pull request row of one of the owner's builds, or NotFound."""
    build = await load_build(session, owner, build_id)
    query = select(PullRequest).where(PullRequest.build_id == build.id)
    pr = (await session.execute(query)).scalar_one_or_none()
    if pr is None:
        raise NotFound(f"build {build_id} has no pull request (status: {build.status})")
    return pr
