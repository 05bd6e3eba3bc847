"""Reading a build's plan: the workflow names it (`plan_ref`), the owner's artifacts hold it.

A plan never changes once made, so a parked build's row, which keeps the view it parked with,
names it without asking the workflow: reading the plan at the gate needs no worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, NotFound, TimedOut, Unavailable
from api.queries import kept_view, load_row
from api.schemas.plans import PlanOut
from cofounder.artifacts import ArtifactNotFound, ArtifactStore
from cofounder.payloads import BuildView
from workflows.build import BuildWorkflow

log = structlog.get_logger()

# Unlike a status read, nothing in the database can answer instead, so the workflow gets longer:
# a finished build's workflow answers by replaying its history on a worker, and the first query
# after the worker that cached it stopped can wait out the server's 10-s sticky-queue window.
PLAN_QUERY_TIMEOUT = timedelta(seconds=15)


async def load_plan(
    session: AsyncSession, client: Client, store: ArtifactStore, owner: str, build_id: str
) -> PlanOut:
    """The plan of one of the owner's builds: NotFound for another owner's (or no) build,
    Conflict until the build has a plan."""
    row, _, _ = await load_row(session, owner, build_id)
    kept = kept_view(row)
    plan_ref = kept.plan_ref if kept is not None else None
    if plan_ref is None:
        view = await _status(client.get_workflow_handle(row.workflow_id), build_id)
        if view.plan_ref is None:
            if view.status.terminal:
                raise Conflict(f"build {build_id} ended {view.status} before it had a plan")
            raise Conflict(
                f"build {build_id} has no plan yet (status: {view.status}); try again soon"
            )
        plan_ref = view.plan_ref
    # The row was found under `owner`, so the build's artifacts are that owner's.
    plan = await _read(store.for_owner(owner), plan_ref, build_id)
    return PlanOut.model_validate({**plan, "build_id": build_id})


async def _status(handle: WorkflowHandle[Any, Any], build_id: str) -> BuildView:
    try:
        return await handle.query(BuildWorkflow.status, rpc_timeout=PLAN_QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"build {build_id}'s workflow is gone, and its plan with it") from err
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise TimedOut(
                f"build {build_id} did not answer within "
                f"{PLAN_QUERY_TIMEOUT.total_seconds():g}s (is a worker running?)"
            ) from err
        raise Unavailable(f"Temporal could not be reached ({err.message})") from err
    except WorkflowQueryFailedError as err:
        log.warning("status query failed", build_id=build_id, error=str(err))
        raise Unavailable(f"build {build_id} could not answer ({err})") from err


async def _read(store: ArtifactStore, ref: str, build_id: str) -> dict[str, Any]:
    try:
        plan: dict[str, Any] = await store.get_json(ref)
    except ArtifactNotFound as err:
        # The worker wrote it, so this API reads another store than the workers write.
        log.error("plan artifact missing", build_id=build_id, ref=ref)
        raise Unavailable(
            f"the plan of build {build_id} is not in the artifact store "
            "(does the API use the workers' store?)"
        ) from err
    except Exception as err:
        log.warning("artifact store read failed", build_id=build_id, error=repr(err))
        raise Unavailable("the artifact store could not be read; try again") from err
    return plan
