"""Worker Deployment Versioning: a build stays on the worker version it started on, while new
builds start on the version made current; `cofounder deployment` lists and moves versions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cofounder.deployment import live, set_current, versions
from cofounder.payloads import ApprovalDecision, BuildStatus, BuildView
from cofounder.settings import Settings
from tests.helpers import start_build, wait_for_status
from worker import running_worker
from workflows.build import BuildWorkflow

PUBLISHED = (BuildStatus.IN_REVIEW, BuildStatus.SUCCEEDED)


@asynccontextmanager
async def version(
    env: WorkflowEnvironment, settings: Settings, deployment: str, build_id: str
) -> AsyncIterator[list[Worker]]:
    versioned = settings.model_copy(update={"deployment_name": deployment, "build_id": build_id})
    async with running_worker(env.client, versioned) as workers:
        yield workers


async def ran_on(handle: WorkflowHandle[Any, Any]) -> set[str]:
    """The build ids of the workers that completed the build's workflow tasks."""
    history = await handle.fetch_history()
    return {
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }


async def published(handle: WorkflowHandle[Any, BuildView], timeout: float = 90) -> None:
    """Wait until the build's pull request is open (in review, or succeeded without sessions)."""
    deadline = time.monotonic() + timeout
    while (view := await handle.query(BuildWorkflow.status)).status not in PUBLISHED:
        assert not view.status.terminal, f"build ended {view.status}: {view.last_error}"
        assert time.monotonic() < deadline, f"build not published; last {view.status}"
        await asyncio.sleep(0.1)


async def test_a_build_stays_on_its_version_while_new_builds_take_the_current(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    deployment = f"cofounder-{uuid.uuid4().hex[:8]}"
    client = env.client
    async with version(env, settings, deployment, "v1"):
        await set_current(client, deployment, "v1", patience=30)
        first = await start_build(client, settings, sessions, require_approval=True)
        await wait_for_status(first, BuildStatus.AWAITING_APPROVAL)

        async with version(env, settings, deployment, "v2"):
            await set_current(client, deployment, "v2", patience=30)
            assert await versions(client, deployment) == {"v1": "draining", "v2": "current"}
            assert await live(client, deployment) == ["v1", "v2"]

            # The waiting build goes on where it started; a new one starts on v2.
            await first.execute_update(BuildWorkflow.approve, ApprovalDecision(approved=True))
            second: WorkflowHandle[Any, BuildView] = await start_build(client, settings, sessions)
            for handle in (first, second):
                await published(handle)
            assert await ran_on(first) == {"v1"}
            assert await ran_on(second) == {"v2"}

            # A rollback is the same command: new builds start on v1 again.
            await set_current(client, deployment, "v1", patience=30)
            assert (await versions(client, deployment))["v1"] == "current"
