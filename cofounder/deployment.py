"""Worker Deployment Versioning: which worker version new builds start on, and which versions
still have builds pinned to them (their workers must keep running until they drain)."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus as Status
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

# A version's workers take a while to start polling after a rollout; until then the server
# refuses to make it current. How long to keep asking, and how often.
SET_CURRENT_PATIENCE = 300.0
SET_CURRENT_EVERY = 2.0
# Versions whose workers are still needed: new builds start on the current (or ramping) one,
# and a draining one still has open builds pinned to it.
LIVE = (
    Status.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT,
    Status.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING,
    Status.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING,
)


class DeploymentError(RuntimeError):
    """The deployment or its version is not what the command needs."""


async def set_current(
    client: Client, deployment: str, build_id: str, patience: float = SET_CURRENT_PATIENCE
) -> None:
    """Make `build_id` the version every new build starts on (a rollout, or a rollback to an
    older build id whose workers still run). Running builds stay on their own version."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=deployment,
        build_id=build_id,
        identity=client.identity,
    )
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError as err:
            # NOT_FOUND / FAILED_PRECONDITION: the version's workers have not polled yet.
            waiting = err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
            if not waiting or loop.time() >= deadline:
                raise DeploymentError(
                    f"{deployment} version {build_id!r} cannot become current: {err.message}"
                ) from None
        await asyncio.sleep(SET_CURRENT_EVERY)


async def versions(client: Client, deployment: str) -> dict[str, str]:
    """Each version's build id and its status (current, ramping, draining, drained, ...)."""
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return {}  # no worker of it has polled yet
        raise
    return {
        summary.deployment_version.build_id: _status_name(summary.status)
        for summary in described.worker_deployment_info.version_summaries
    }


async def live(client: Client, deployment: str) -> list[str]:
    """Build ids whose workers must keep running: the current, ramping and draining ones."""
    found = await versions(client, deployment)
    return sorted(build for build, status in found.items() if status in _LIVE_NAMES)


def _status_name(status: Status.ValueType) -> str:
    return Status.Name(status).removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower()


_LIVE_NAMES = frozenset(_status_name(status) for status in LIVE)
