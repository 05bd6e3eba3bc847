"""Closing sandboxes whose build has ended without closing them (an operator terminated it,
or its worker died at the wrong moment): found by their metadata, checked against Temporal."""

from __future__ import annotations

import structlog
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.sandbox import SandboxRuntime
from cofounder.payloads import build_workflow_id

log = structlog.get_logger()


async def sweep_orphans(runtime: SandboxRuntime, client: Client) -> list[str]:
    """Close every session whose build's workflow is no longer running; returns their ids."""
    closed = []
    for info in await runtime.list_sessions():
        build_id = info.metadata.get("cofounder_build")
        if build_id is None or await _running(client, build_id):
            continue
        if await runtime.close(info.session_id):
            closed.append(info.session_id)
            log.info("orphaned sandbox closed", session=info.session_id, build_id=build_id)
    return closed


async def _running(client: Client, build_id: str) -> bool:
    try:
        description = await client.get_workflow_handle(build_workflow_id(build_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING
