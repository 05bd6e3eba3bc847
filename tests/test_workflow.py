"""BuildWorkflow end to end on a real dev server, offline model, bubblewrap and git."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from activities.sandbox.local import LocalRuntime
from activities.sandbox.sweep import sweep_orphans
from cofounder.db import Build
from cofounder.payloads import ApprovalDecision, BuildStatus, Deadlines
from cofounder.settings import Settings
from tests.helpers import (
    GOAL,
    activity_summaries,
    activity_types,
    inject_faults,
    largest_payload,
    model_stats,
    progress,
    record,
    sandboxes_of,
    side_effects,
    start_build,
    wait_for_status,
)
from workflows.build import BuildWorkflow


def published_tests_pass(settings: Settings, branch: str) -> bool:
    checkout = settings.data_dir / "checkout"
    remote = settings.git_remote("local", "demo")
    subprocess.run(
        ["git", "clone", "-q", "--branch", branch, str(remote), str(checkout)], check=True
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=checkout,
        capture_output=True,
        env={"PATH": os.environ["PATH"], "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    return run.returncode == 0


async def build_row(sessions: async_sessionmaker[AsyncSession], build_id: str) -> Build:
    async with sessions() as session:
        build = await session.get(Build, build_id)
    assert build is not None
    return build


async def test_demo_build_debugs_once_then_publishes(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()

    assert view.status == BuildStatus.SUCCEEDED
    # The scripted first attempt has one bug the tests catch; the README step passes at once.
    assert view.attempt == 3 and [step.attempts for step in view.steps] == [2, 1]
    assert view.pull_request is not None
    assert view.pull_request.branch == f"cofounder/{view.build_id}"
    assert await progress(sessions, view.build_id) == [
        ("planning", 0),
        ("coding", 0),
        ("testing", 1),
        ("debugging", 1),
        ("coding", 1),
        ("testing", 2),
        ("coding", 2),
        ("testing", 3),
        ("reviewing", 3),
        ("publishing", 3),
        ("succeeded", 3),
    ]
    # What was published is the fixed code: the branch's own tests pass.
    assert published_tests_pass(settings, view.pull_request.branch)
    history = await handle.fetch_history()
    kinds = activity_types(history)
    assert kinds.count("run_tests") == 3 and kinds.count("debug") == 1
    # One sandbox session for the whole build, closed when it ended.
    assert kinds.count("open_sandbox") == 1 and kinds.count("close_sandbox") == 1
    assert kinds.index("open_sandbox") < kinds.index("model_turn") < kinds.index("run_tests")
    # The coder works in the sandbox, one turn and one tool run per activity: it looks, writes,
    # hands over; after the diagnosis it reads, edits, runs the tests and hands over; in the
    # README step it looks, writes and hands over.
    assert kinds.count("model_turn") == 3 + 4 + 3 and kinds.count("run_tools") == 2 + 3 + 2
    assert "write_code" not in kinds
    assert await LocalRuntime(settings).list_sessions() == []
    summaries = activity_summaries(history)
    assert all(summaries) and len(summaries) == len(kinds)  # every row in the UI says what it did
    assert summaries[kinds.index("plan")] == f"plan: {GOAL}"
    assert "step 1: test run 2 of 3" in summaries and "diagnose test run 1" in summaries
    assert f"publish branch cofounder/{view.build_id}" in summaries
    assert "coder turn 1" in summaries and "turn 2: edit_file" in summaries
    assert kinds.index("plan") < kinds.index("model_turn") < kinds.index("review")
    assert kinds.index("review") < kinds.index("publish")
    # The project's memory is asked before the plan, and told what the build made of its goal
    # before its ending is recorded.
    assert kinds.index("recall") < kinds.index("plan") and kinds[-2:] == [
        "remember",
        "record_status",
    ]
    assert summaries[kinds.index("recall")] == "recall for the plan"

    # Cost: the workflow's live total, the ledger and the model's served calls all agree.
    effects = await side_effects(sessions, view.build_id)
    assert effects == {"pull_requests": 1, "ledger_rows": model_stats(offline_model)["served"]}
    assert view.cost.calls == effects["ledger_rows"]
    row = await build_row(sessions, view.build_id)
    assert (row.status, row.attempts, row.error) == ("succeeded", 3, None)
    assert row.cost_micro_usd == view.cost.cost_micro_usd > 0
    assert row.finished_at is not None

    # Payload discipline: the whole history stays small, and so does every payload.
    assert len(history.to_json()) < 1_000_000
    assert largest_payload(history) < 128 * 1024

    await record(handle, "demo_build")

    described = await handle.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(SearchAttributeKey.for_keyword("BuildStatus")) == "succeeded"


async def test_build_fails_when_tests_never_pass(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, max_attempts=1)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "tests still failing after 1 attempts" in str(failure.value.cause)
    await record(handle, "failed_build")
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "failed" and row.attempts == 1
    assert row.error is not None and "tests still failing" in row.error
    assert (await side_effects(sessions, row.id))["pull_requests"] == 0
    assert row.cost_micro_usd > 0  # a failed build is still billed for what it used
    assert await LocalRuntime(settings).list_sessions() == []  # and its sandbox is closed


async def test_approval_gate_waits_then_continues(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, require_approval=True)
    await wait_for_status(handle, BuildStatus.AWAITING_APPROVAL)
    view = await handle.execute_update(BuildWorkflow.approve, ApprovalDecision(approved=True))
    assert view.plan_title
    assert (await handle.result()).status == BuildStatus.SUCCEEDED
    await record(handle, "approved_build")


async def test_rejected_plan_ends_cancelled_without_code(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, require_approval=True)
    await wait_for_status(handle, BuildStatus.AWAITING_APPROVAL)
    decision = ApprovalDecision(approved=False, comment="use a different name")
    await handle.execute_update(BuildWorkflow.approve, decision)
    view = await handle.result()
    assert view.status == BuildStatus.CANCELLED
    assert view.last_error == "plan rejected: use a different name"
    await record(handle, "rejected_build")
    assert "write_code" not in activity_types(await handle.fetch_history())


async def test_approve_refused_when_not_awaiting(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(BuildWorkflow.approve, ApprovalDecision(approved=True))
    assert "not awaiting approval" in str(refused.value.cause)
    assert (await handle.result()).status == BuildStatus.SUCCEEDED


async def test_cancel_ends_build_cancelled(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"delay": 30.0, "role": "architect"})
    handle = await start_build(env.client, settings, sessions)
    await wait_for_status(handle, BuildStatus.PLANNING)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "cancelled" and row.finished_at is not None
    assert (await handle.describe()).status.name == "CANCELED"


async def test_cancel_stops_the_sandbox_run(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"slow_tests": 600, "role": "coder"})
    handle = await start_build(env.client, settings, sessions)
    await wait_for_status(handle, BuildStatus.TESTING)
    while not sandboxes_of(os.getpid()) or "run_tests" not in await pending_activities(handle):
        await asyncio.sleep(0.1)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    # The workflow waited for the activity to confirm: its sandbox is already gone.
    assert sandboxes_of(os.getpid()) == []
    assert await LocalRuntime(settings).list_sessions() == []
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "cancelled"


async def test_a_terminated_build_leaves_its_sandbox_to_the_sweep(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    handles = []
    for _ in range(2):  # one after the other, so each build's coder takes its own slow suite
        inject_faults(offline_model, {"slow_tests": 600, "role": "coder"})
        handles.append(handle := await start_build(env.client, settings, sessions))
        while "run_tests" not in await pending_activities(handle):
            await asyncio.sleep(0.1)
    running, terminated = handles
    runtime = LocalRuntime(settings)
    assert len(await runtime.list_sessions()) == 2
    # An operator's terminate runs no workflow code: nothing closes the sandbox but the sweep.
    await terminated.terminate("operator")
    closed = await sweep_orphans(runtime, env.client)
    assert len(closed) == 1
    left = await runtime.list_sessions()
    assert [info.metadata["cofounder_build"] for info in left] == [running.id.split("-", 1)[1]]
    await running.cancel()
    with pytest.raises(WorkflowFailureError):
        await running.result()
    assert await runtime.list_sessions() == []


async def pending_activities(handle: WorkflowHandle) -> list[str]:
    description = await handle.describe()
    return [a.activity_type.name for a in description.raw_description.pending_activities]


async def test_auth_error_fails_fast_with_clear_reason(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"status": 401})
    handle = await start_build(env.client, settings, sessions)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "failed" and row.error is not None and "401" in row.error
    assert model_stats(offline_model)["requests"] == 1  # not retried


async def test_rate_limit_and_overload_are_retried(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(
        offline_model, {"status": 429, "retry_after": 1}, {"status": 529}, {"status": 500}
    )
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    stats = model_stats(offline_model)
    assert stats["requests"] == stats["served"] + 3
    assert (await side_effects(sessions, view.build_id))["ledger_rows"] == stats["served"]


async def test_malformed_model_responses_fail_the_build_in_plain_words(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, *[{"garbled": "bad-content", "role": "architect"}] * 3)
    handle = await start_build(env.client, settings, sessions)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "failed" and row.error is not None
    assert row.error.startswith("the model API returned a malformed response: content:")
    assert row.error.endswith("(3 unusable answers in a row)")
    stats = model_stats(offline_model)
    assert (stats["garbled"], stats["served"], stats["pending_faults"]) == (3, 0, 0)


async def test_a_step_that_keeps_failing_fails_the_build_at_its_deadline(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, *[{"status": 529, "role": "architect"}] * 50)
    deadlines = Deadlines(model=3)
    handle = await start_build(env.client, settings, sessions, deadlines=deadlines)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    row = await build_row(sessions, handle.id.removeprefix("build-"))
    assert row.status == "failed"
    assert row.error == (
        "planning did not succeed before its deadline; last error: "
        "the model API is unavailable (529): injected fault (529)"
    )
    assert model_stats(offline_model)["requests"] >= 2  # retried until the deadline, no cap


async def test_a_build_leaves_its_traces_under_its_owner_only(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, owner="user_b")
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    assert settings.git_remote("user_b", "demo").exists()
    assert not settings.git_remote("local", "demo").exists()
    # Artifacts and the call journal: all under owners/user_b, nothing at the store's root.
    assert sorted(p.name for p in settings.artifacts_dir.iterdir()) == ["owners"]
    assert sorted(p.name for p in (settings.artifacts_dir / "owners").iterdir()) == ["user_b"]
