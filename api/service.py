"""What the builds API does, apart from HTTP: rows in the app database, calls to the workflow.

A build is a row (the record the workflow keeps up to date) and a `BuildWorkflow` execution
(the live truth while it runs). Errors carry the HTTP status they answer with.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, ServiceError, TimedOut, Unavailable
from api.queries import load_build
from api.schemas import BuildCreate, BuildOut
from cofounder.db import Build, Project, insert_for
from cofounder.db.models import utcnow
from cofounder.payloads import (
    BUILD_STATUS,
    OWNER,
    PROJECT,
    ApprovalDecision,
    Budget,
    BudgetExtension,
    BuildInput,
    BuildStatus,
    build_workflow_id,
)
from cofounder.settings import Settings
from workflows.build import BuildWorkflow

log = structlog.get_logger()

START_TIMEOUT = timedelta(seconds=10)
# Waiting for the workflow to accept and run the update; a worker answers in milliseconds.
UPDATE_TIMEOUT = timedelta(seconds=10)


def new_build_id() -> str:
    return uuid.uuid4().hex[:16]


async def create_build(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    owner: str,
    request: BuildCreate,
    request_id: str | None = None,
) -> BuildOut:
    """Insert the project (on first use) and the build, and start its workflow: all or nothing."""
    project_id = await _ensure_project(session, owner, request.project)
    build_id = new_build_id()
    build = Build(
        id=build_id,
        project_id=project_id,
        owner=owner,
        goal=request.goal,
        status=BuildStatus.QUEUED.value,
        require_approval=request.require_approval,
        workflow_id=build_workflow_id(build_id),
        attempts=0,
        input_tokens=0,
        output_tokens=0,
        cost_micro_usd=0,
        budget_micro_usd=round((request.budget_usd or settings.default_budget_usd) * 1e6),
    )
    session.add(build)
    # Flushed, not committed: the rows are only kept once the workflow has really started.
    await session.flush()
    handle = await _start_workflow(session, client, settings, build, request, request_id)
    try:
        await session.commit()
    except Exception as err:
        await session.rollback()
        await _terminate(handle, "the API could not save the build")
        raise Unavailable("could not save the build; it was not started") from err
    log.info("build created", build_id=build_id, project=request.project)
    return BuildOut.from_row(build, request.project, None)


async def _ensure_project(session: AsyncSession, owner: str, slug: str) -> int:
    """The project's id, inserting it if new; ON CONFLICT keeps concurrent first uses safe."""
    statement = (
        insert_for(session)(Project)
        .values(owner=owner, slug=slug, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["owner", "slug"])
    )
    await session.execute(statement)
    found = select(Project.id).where(Project.owner == owner, Project.slug == slug)
    return int((await session.execute(found)).scalar_one())


async def _start_workflow(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    build: Build,
    request: BuildCreate,
    request_id: str | None,
) -> WorkflowHandle[Any, Any]:
    payload = BuildInput(
        build_id=build.id,
        project=request.project,
        goal=request.goal,
        require_approval=request.require_approval,
        max_attempts=settings.max_attempts,
        owner=build.owner,
        budget=Budget(
            limit_micro_usd=build.budget_micro_usd or 0,
            wait_seconds=settings.budget_wait_seconds,
        ),
    )
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(BUILD_STATUS, BuildStatus.QUEUED.value),
            SearchAttributePair(PROJECT, request.project),
            SearchAttributePair(OWNER, build.owner),
        ]
    )
    try:
        return await client.start_workflow(
            BuildWorkflow.run,
            payload,
            id=build.workflow_id,
            task_queue=settings.task_queue,
            search_attributes=attributes,
            memo={"request_id": request_id} if request_id else None,
            rpc_timeout=START_TIMEOUT,
        )
    except Exception as err:
        await session.rollback()
        log.warning("workflow start failed", build_id=build.id, error=str(err))
        raise Unavailable(
            f"could not start the build: Temporal is unavailable ({type(err).__name__}); "
            "nothing was created, try again"
        ) from err


async def _terminate(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    try:
        await handle.terminate(reason=reason)
    except Exception:
        # Nothing more can be done here; the orphan shows up in Temporal with this log line.
        log.exception("could not terminate an unsaved build", workflow_id=handle.id)


async def cancel_build(
    session: AsyncSession, client: Client, owner: str, build_id: str
) -> BuildOut:
    """Ask the workflow to cancel; asking again is harmless, a finished build is a Conflict."""
    build = await load_build(session, owner, build_id)
    _refuse_finished(build, "cancelled")
    handle = client.get_workflow_handle(build.workflow_id)
    try:
        # The row can lag behind (or never see) an end made outside the API, e.g. a terminate.
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"build {build_id} already finished; it cannot be cancelled")
        await handle.cancel()
    except RPCError as err:
        raise _rpc_error(build_id, "cancelled", err) from err
    log.info("build cancel requested", build_id=build_id)
    return build


async def approve_build(
    session: AsyncSession, client: Client, owner: str, build_id: str, decision: ApprovalDecision
) -> BuildOut:
    """Send the plan decision; the workflow's validator refuses it unless it awaits approval."""
    build = await load_build(session, owner, build_id)
    _refuse_finished(build, "approved")
    handle = client.get_workflow_handle(build.workflow_id)
    try:
        view = await asyncio.wait_for(
            handle.execute_update(BuildWorkflow.approve, decision),
            UPDATE_TIMEOUT.total_seconds(),
        )
    except WorkflowUpdateFailedError as err:
        raise Conflict(_failure_message(err)) from err
    except RPCError as err:
        raise _rpc_error(build_id, "approved", err) from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise TimedOut(
            f"build {build_id} did not answer within {UPDATE_TIMEOUT.total_seconds():.0f}s "
            "(is a worker running?); the decision may still be applied"
        ) from err
    log.info("build plan decided", build_id=build_id, approved=decision.approved)
    return build.with_view(view)


async def extend_budget(
    session: AsyncSession, client: Client, owner: str, build_id: str, add_usd: float
) -> BuildOut:
    """Raise a running build's budget; one awaiting budget goes on if it is now enough."""
    build = await load_build(session, owner, build_id)
    _refuse_finished(build, "given more budget")
    handle = client.get_workflow_handle(build.workflow_id)
    extension = BudgetExtension(add_micro_usd=round(add_usd * 1e6))
    try:
        view = await asyncio.wait_for(
            handle.execute_update(BuildWorkflow.extend_budget, extension),
            UPDATE_TIMEOUT.total_seconds(),
        )
    except WorkflowUpdateFailedError as err:
        raise Conflict(_failure_message(err)) from err
    except RPCError as err:
        raise _rpc_error(build_id, "given more budget", err) from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise TimedOut(
            f"build {build_id} did not answer within {UPDATE_TIMEOUT.total_seconds():.0f}s "
            "(is a worker running?); the extension may still be applied"
        ) from err
    # The row keeps the limit for when the workflow no longer answers (the build ended).
    limit = update(Build).where(Build.id == build_id).values(budget_micro_usd=view.budget_micro_usd)
    await session.execute(limit)
    await session.commit()
    log.info("build budget extended", build_id=build_id, add_usd=add_usd)
    return build.with_view(view)


def _refuse_finished(build: BuildOut, action: str) -> None:
    if build.status.terminal:
        raise Conflict(f"build {build.id} already {build.status}; it cannot be {action}")


def _rpc_error(build_id: str, action: str, err: RPCError) -> ServiceError:
    if err.status == RPCStatusCode.NOT_FOUND:
        return Conflict(
            f"build {build_id} has ended (or its workflow is gone); it cannot be {action}"
        )
    return Unavailable(f"Temporal could not be reached ({err.message})")


def _failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    if isinstance(cause, FailureError) and cause.message:
        return cause.message
    return str(cause or err)
