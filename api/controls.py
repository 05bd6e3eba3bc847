"""Changing a live build through its workflow: cancel it, decide its plan, raise its budget,
give its pull request feedback, tell it the pull request was merged or closed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import timedelta

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.admission import Admit
from api.errors import Conflict, ServiceError, TimedOut, Unavailable
from api.queries import load_build
from api.schemas.builds import BuildOut
from cofounder.db import Build
from cofounder.db.models import utcnow
from cofounder.payloads import (
    ApprovalDecision,
    BillingHold,
    BudgetExtension,
    BuildStatus,
    Feedback,
    PullRequestClosed,
)
from cofounder.settings import Settings
from workflows.build import BuildWorkflow

log = structlog.get_logger()

# Waiting for the workflow to accept and run the update. A worker answers in milliseconds, but
# the first task for a build after the worker that cached it stopped can wait out the server's
# window for that worker's sticky queue (10 s, measured in tests/test_parked_reads.py).
UPDATE_TIMEOUT = timedelta(seconds=20)
# A signal is only written to the workflow's history; no worker needs to answer it.
SIGNAL_TIMEOUT = timedelta(seconds=10)


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
    await steered(session, build.workflow_id)
    await session.commit()
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
    await steered(session, build.workflow_id)
    await session.commit()
    log.info("build plan decided", build_id=build_id, approved=decision.approved)
    return build.with_view(view)


async def extend_budget(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    owner: str,
    build_id: str,
    add_usd: float,
) -> BuildOut:
    """Raise a running build's budget within the plan's monthly spend; one awaiting budget
    goes on if it is now enough."""
    build = await load_build(session, owner, build_id)
    _refuse_finished(build, "given more budget")
    extension = BudgetExtension(add_micro_usd=round(add_usd * 1e6))
    await Admit(session, settings, owner).extension(extension.add_micro_usd)
    # Released before the update, which waits on a worker: SQLite's write lock is everyone's.
    await session.commit()
    handle = client.get_workflow_handle(build.workflow_id)
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
    await steered(session, build.workflow_id)
    await session.commit()
    log.info("build budget extended", build_id=build_id, add_usd=add_usd)
    return build.with_view(view)


async def add_feedback(
    session: AsyncSession,
    client: Client,
    owner: str,
    build_id: str,
    body: str,
    key: str | None = None,
) -> BuildOut:
    """Queue feedback on the build's pull request for its next iteration (one running goes on).
    The same `key` again is the same feedback, which the workflow drops as a repeat."""
    build = await load_build(session, owner, build_id)
    _refuse_finished(build, "given feedback")
    # The row may lag behind an opened pull request; a pull request row or in_review is enough.
    if build.pull_request is None and build.status != BuildStatus.IN_REVIEW:
        raise Conflict(
            f"build {build_id} has no pull request yet (status: {build.status}); "
            "feedback is taken once it has one"
        )
    item = Feedback(id=f"api:{key or uuid.uuid4().hex}", kind="api", author=owner, body=body)
    if not await send_feedback(session, client, build.workflow_id, item):
        raise Conflict(
            f"build {build_id} has ended (or its workflow is gone); it takes no feedback"
        )
    await session.commit()
    log.info("build feedback queued", build_id=build_id, feedback=item.id)
    return build


async def send_feedback(
    session: AsyncSession, client: Client, workflow_id: str, item: Feedback
) -> bool:
    """Signal `item` to a build's workflow; False when that workflow no longer runs.
    Unavailable when Temporal cannot be reached."""
    handle = client.get_workflow_handle(workflow_id)
    sending = handle.signal(BuildWorkflow.feedback, item, rpc_timeout=SIGNAL_TIMEOUT)
    return await _signalled(session, workflow_id, sending)


async def send_closed(
    session: AsyncSession, client: Client, workflow_id: str, closed: PullRequestClosed
) -> bool:
    """Tell a build its pull request was merged or closed; False when its workflow no longer
    runs (it ended already, which is what the news would have made it do)."""
    handle = client.get_workflow_handle(workflow_id)
    sending = handle.signal(BuildWorkflow.pull_request_closed, closed, rpc_timeout=SIGNAL_TIMEOUT)
    return await _signalled(session, workflow_id, sending)


async def send_hold(
    session: AsyncSession, client: Client, workflow_id: str, hold: BillingHold
) -> bool:
    """Hold or release a build for its owner's billing; False when it no longer runs."""
    handle = client.get_workflow_handle(workflow_id)
    sending = handle.signal(BuildWorkflow.billing_hold, hold, rpc_timeout=SIGNAL_TIMEOUT)
    return await _signalled(session, workflow_id, sending)


async def send_cancel(session: AsyncSession, client: Client, workflow_id: str) -> bool:
    """Cancel a build (it winds down and ends cancelled); False when it no longer runs."""
    handle = client.get_workflow_handle(workflow_id)
    return await _signalled(session, workflow_id, handle.cancel(rpc_timeout=SIGNAL_TIMEOUT))


async def steered(session: AsyncSession, workflow_id: str) -> None:
    """Note that the build was just sent something: the view its row keeps may predate it, so
    reads ask the workflow until a newer phase is recorded (api/queries.py). Joins the
    caller's transaction."""
    mark = update(Build).where(Build.workflow_id == workflow_id).values(steered_at=utcnow())
    await session.execute(mark)


async def _signalled(session: AsyncSession, workflow_id: str, sending: Awaitable[None]) -> bool:
    try:
        await sending
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            log.info("signal to an ended build dropped", workflow_id=workflow_id)
            return False
        raise Unavailable(f"Temporal could not be reached ({err.message})") from err
    except RuntimeError as err:  # how a lazily connected client reports a failed connect
        raise Unavailable(f"Temporal could not be reached ({err})") from err
    await steered(session, workflow_id)
    return True


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
