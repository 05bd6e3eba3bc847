"""Whole builds on each sandbox runtime: the demo end to end, a sandbox lost mid-build, and a
cancel that kills the E2B sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.sandbox import SandboxRuntime
from activities.sandbox.e2b import E2BRuntime
from cofounder.payloads import BuildStatus, TestReport
from cofounder.settings import Settings
from tests.conftest import e2b_settings
from tests.doubles.e2b import E2BDouble
from tests.helpers import inject_faults, start_build, wait_for_status
from tests.sandbox_runtimes import DOUBLES, destroy
from worker import running_worker


@pytest_asyncio.fixture
async def on_runtime(
    env: WorkflowEnvironment, settings: Settings, runtime: SandboxRuntime
) -> AsyncIterator[SandboxRuntime]:
    """A worker whose builds run on `runtime` (each runtime in turn)."""
    if isinstance(runtime, E2BRuntime):
        settings = runtime.settings
    async with running_worker(env.client, settings):
        yield runtime


def reports_of(history: WorkflowHistory) -> list[TestReport]:
    """Every run_tests result in the history, decoded."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    reports = []
    for e in history.events:
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            continue
        done = e.activity_task_completed_event_attributes
        if scheduled[done.scheduled_event_id] == "run_tests":
            reports.append(TestReport.model_validate(json.loads(done.result.payloads[0].data)))
    return reports


async def test_the_demo_build_runs_on_each_runtime(
    env: WorkflowEnvironment, settings: Settings, sessions, on_runtime: SandboxRuntime
) -> None:
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED and view.attempt == 3
    reports = reports_of(await handle.fetch_history())
    assert [r.passed for r in reports] == [False, True, True]  # step 1 twice, then step 2
    assert reports[0].sandbox and reports[0].sandbox.runtime == on_runtime.name
    assert len({r.sandbox.session_id for r in reports if r.sandbox}) == 1  # one session
    assert await on_runtime.list_sessions() == []  # closed when the build ended
    if isinstance(on_runtime, E2BRuntime):
        counts = DOUBLES[id(on_runtime)].counts  # type: ignore[attr-defined]
        assert (counts.creates, counts.pauses, counts.resumes, counts.kills) == (1, 3, 2, 1)


async def test_a_sandbox_lost_mid_build_is_restored_from_its_snapshot(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions,
    on_runtime: SandboxRuntime,
    offline_model: str,
) -> None:
    inject_faults(offline_model, {"delay": 2.0, "role": "debugger"})
    handle = await start_build(env.client, settings, sessions)
    await wait_for_status(handle, BuildStatus.DEBUGGING)
    [lost] = await on_runtime.list_sessions()
    await destroy(on_runtime, lost.session_id)

    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    first, second, _ = reports_of(await handle.fetch_history())
    assert first.sandbox and second.sandbox
    assert first.sandbox.session_id == lost.session_id and first.sandbox.generation == 0
    assert second.sandbox.session_id != lost.session_id and second.sandbox.generation == 1
    assert await on_runtime.list_sessions() == []


async def test_cancelling_a_build_kills_its_e2b_sandbox(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions,
    e2b_double: E2BDouble,
    offline_model: str,
) -> None:
    inject_faults(offline_model, {"slow_tests": 600, "role": "coder"})
    async with running_worker(env.client, e2b_settings(settings, e2b_double)):
        handle = await start_build(env.client, settings, sessions)
        while not any(sandbox.processes for sandbox in e2b_double.sandboxes.values()):
            await asyncio.sleep(0.05)
        [sandbox] = e2b_double.sandboxes.values()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert sandbox.state == "killed" and not sandbox.processes
    assert e2b_double.counts.kills == 1
