"""Replaying recorded histories against the current workflow code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from cofounder.correlation import CorrelationInterceptor
from cofounder.settings import Settings
from cofounder.temporal import connect


class ReplayFailed(RuntimeError):
    """The history does not replay: the code changed the workflow's command sequence."""


def replayer() -> Replayer:
    from workflows.build import BuildWorkflow
    from workflows.metering import MeteringWorkflow

    # The correlation interceptor replays too, so a change to it that broke determinism shows here.
    return Replayer(
        workflows=[BuildWorkflow, MeteringWorkflow],
        data_converter=pydantic_data_converter,
        interceptors=[CorrelationInterceptor()],
    )


async def replay_history(history: WorkflowHistory) -> None:
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        raise ReplayFailed(str(result.replay_failure)) from result.replay_failure


def replay_file(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    asyncio.run(replay_history(history))


async def replay_workflow(settings: Settings, workflow_id: str) -> int:
    """Replay every run of a workflow (a build that continued as new is a chain of runs);
    the number of runs replayed."""
    return await replay_runs(await connect(settings), workflow_id)


async def replay_runs(client: Client, workflow_id: str) -> int:
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    if not runs:
        raise ReplayFailed(f"no workflow {workflow_id!r} on this server")
    for run in runs:
        handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
        await replay_history(await handle.fetch_history())
    return len(runs)
