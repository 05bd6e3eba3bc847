"""Replaying recorded histories against the current workflow code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from cofounder.correlation import CorrelationInterceptor
from cofounder.settings import Settings
from cofounder.temporal import connect

# How far back `replay --recent` looks, widening until it has found enough builds. SQL
# visibility (PostgreSQL, SQLite) cannot ORDER BY, so the newest are sorted here, from a window
# that stays small while builds are frequent; None: every build the server still keeps.
RECENT_WINDOWS: tuple[timedelta | None, ...] = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    None,
)


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


async def replay_recent(settings: Settings, count: int) -> dict[str, int]:
    """Replay every run of the `count` most recently started builds; see `replay_builds`."""
    return await replay_builds(await connect(settings), count)


async def replay_builds(client: Client, count: int) -> dict[str, int]:
    """Replay every run of the `count` most recently started builds (any status), newest
    first; each build's workflow id and its number of runs. The first build that does not
    replay stops it with ReplayFailed, naming that build."""
    replayed: dict[str, int] = {}
    for workflow_id in await recent_builds(client, count):
        try:
            replayed[workflow_id] = await replay_runs(client, workflow_id)
        except ReplayFailed as err:
            raise ReplayFailed(f"{workflow_id}: {err}") from err
    return replayed


async def recent_builds(client: Client, count: int) -> list[str]:
    """Workflow ids of the `count` builds whose latest run started last, newest first."""
    from workflows.build import WORKFLOW_NAME

    now = datetime.now(UTC)
    newest: list[str] = []
    for window in RECENT_WINDOWS:
        query = f"WorkflowType = '{WORKFLOW_NAME}'"
        if window is not None:
            query += f" AND StartTime > '{(now - window).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        newest = _newest(
            [run async for run in client.list_workflows(query)],
            count,
        )
        if len(newest) == count:
            break
    return newest


def _newest(runs: list[WorkflowExecution], count: int) -> list[str]:
    ids = [run.id for run in sorted(runs, key=lambda run: run.start_time, reverse=True)]
    return list(dict.fromkeys(ids))[:count]
