"""`cofounder replay --recent N`: the deploy's gate replays the newest builds on the server
against the code about to ship, and stops at the first one it cannot replay, naming it."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from cofounder.cli import app
from cofounder.payloads import ApprovalDecision, BuildInput, BuildStatus, BuildView
from cofounder.replay import recent_builds, replay_builds
from cofounder.settings import Settings
from tests.helpers import start_build, wait_for_status
from workflows.build import WORKFLOW_NAME, BuildWorkflow


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class OlderBuild:
    """A build as another release recorded it: a timer where today's code starts planning."""

    @workflow.run
    async def run(self, input: BuildInput) -> BuildView:
        await workflow.sleep(0.01)
        return BuildView(build_id=input.build_id, status=BuildStatus.SUCCEEDED)


async def replay_cli(env: WorkflowEnvironment, *args: str) -> Result:
    """`cofounder replay ARGS` against the tests' dev server (the CLI runs its own loop)."""
    environ = {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host}
    return await asyncio.to_thread(CliRunner().invoke, app, ["replay", *args], env=environ)


async def test_recent_replays_the_newest_builds_whatever_their_status(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    done = await start_build(env.client, settings, sessions)
    assert (await done.result()).status == BuildStatus.SUCCEEDED
    waiting = await start_build(env.client, settings, sessions, require_approval=True)
    await wait_for_status(waiting, BuildStatus.AWAITING_APPROVAL)

    # Newest first: the build still open replays as far as its history goes.
    assert await recent_builds(env.client, 2) == [waiting.id, done.id]
    assert await replay_builds(env.client, 2) == {waiting.id: 1, done.id: 1}
    result = await replay_cli(env, "--recent", "2")
    assert result.exit_code == 0, result.output
    assert f"  {waiting.id} (1 run)" in result.output
    assert "replayed 2 builds (2 runs): deterministic" in result.output

    await waiting.execute_update(BuildWorkflow.approve, ApprovalDecision(approved=False))
    assert (await waiting.result()).status == BuildStatus.CANCELLED


async def test_recent_stops_at_the_first_build_it_cannot_replay(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    older_queue = f"older-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=older_queue, workflows=[OlderBuild]):
        older = await env.client.start_workflow(
            OlderBuild.run,
            BuildInput(build_id="older", project="demo", goal="from another release"),
            id=f"build-older-{uuid.uuid4().hex[:8]}",
            task_queue=older_queue,
        )
        await older.result()
    newer = await start_build(env.client, settings, sessions, require_approval=True)
    await wait_for_status(newer, BuildStatus.AWAITING_APPROVAL)

    # The newest replays; the one before it is where the gate stops, and it says which.
    assert (await replay_cli(env, "--recent", "1")).exit_code == 0
    failed = await replay_cli(env, "--recent", "2")
    assert failed.exit_code == 1, failed.output
    assert f"replay failed: {older.id}: " in failed.output
    assert "nondetermin" in failed.output.lower()
    assert newer.id not in failed.output

    # Exactly one of the three forms.
    assert (await replay_cli(env, older.id, "--recent", "2")).exit_code == 2
    assert (await replay_cli(env, "--recent", "0")).exit_code == 2

    await newer.execute_update(BuildWorkflow.approve, ApprovalDecision(approved=False))
    await newer.result()
