"""Crashes mid-build: a SIGKILLed worker and a restarted Temporal server lose nothing.

These tests run their own dev server and workers as real processes, so they can kill them.
"""

from __future__ import annotations

import asyncio
import os
import signal

from cofounder.payloads import BuildStatus
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.doubles.e2b import E2BDouble
from tests.helpers import (
    inject_faults,
    retried_activities,
    sandboxes_of,
    start_build,
    wait_for_status,
)
from tests.processes import BUILD_DEADLINE, Processes, assert_exactly_once


async def test_killed_worker_mid_build_loses_nothing(
    crash_settings: Settings, processes: Processes, sessions, offline_model: str
) -> None:
    inject_faults(offline_model, {"slow_tests": 2, "role": "coder"})  # a test run to land in
    processes.temporal()
    first = processes.worker()
    client = await connect(crash_settings)
    handle = await start_build(client, crash_settings, sessions)

    await wait_for_status(handle, BuildStatus.TESTING, timeout=60)
    while not sandboxes_of(first.pid):  # the test run has really started
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # mid-test-run: the sandbox dies with it
    first.wait()
    processes.worker()

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    await assert_exactly_once(crash_settings, sessions, view.build_id, offline_model)
    # The kill landed inside an activity: the new worker ran it again as a retry.
    assert retried_activities(await handle.fetch_history())


async def test_restarted_temporal_server_mid_build_loses_nothing(
    crash_settings: Settings, processes: Processes, sessions, offline_model: str
) -> None:
    server = processes.temporal()
    processes.worker()
    client = await connect(crash_settings)
    handle = await start_build(client, crash_settings, sessions)

    await wait_for_status(handle, BuildStatus.CODING, timeout=60)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    processes.temporal()  # same SQLite file: the history survives

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    await assert_exactly_once(crash_settings, sessions, view.build_id, offline_model)


async def test_killed_worker_mid_test_run_on_e2b_makes_one_sandbox(
    crash_settings: Settings,
    processes: Processes,
    sessions,
    offline_model: str,
    e2b_double: E2BDouble,
) -> None:
    inject_faults(offline_model, {"slow_tests": 2, "role": "coder"})  # a test run to land in
    processes.temporal()
    on_e2b = {"COFOUNDER_SANDBOX": "e2b"}  # the double's E2B_* variables are already set
    first = processes.worker(env=on_e2b)
    client = await connect(crash_settings)
    handle = await start_build(client, crash_settings, sessions)

    await wait_for_status(handle, BuildStatus.TESTING, timeout=60)
    while not any(sandbox.processes for sandbox in e2b_double.sandboxes.values()):
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # mid-test-run, inside the E2B sandbox
    first.wait()
    processes.worker(env=on_e2b)

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    await assert_exactly_once(crash_settings, sessions, view.build_id, offline_model)
    assert retried_activities(await handle.fetch_history())  # the kill landed inside a step
    # The retry reconnected to the build's sandbox; the end of the build killed it.
    assert e2b_double.counts.creates == 1 and e2b_double.counts.kills == 1
    assert [s.state for s in e2b_double.sandboxes.values()] == ["killed"]


async def test_killed_worker_mid_tool_run_loses_nothing(
    crash_settings: Settings, processes: Processes, sessions, offline_model: str
) -> None:
    # The slow test makes the coder's own pytest run (a run_command tool call) last seconds.
    inject_faults(offline_model, {"slow_tests": 3, "role": "coder"})
    processes.temporal()
    first = processes.worker()
    client = await connect(crash_settings)
    handle = await start_build(client, crash_settings, sessions)

    async def tool_running() -> bool:
        description = await handle.describe()
        pending = [a.activity_type.name for a in description.raw_description.pending_activities]
        return "run_tools" in pending and bool(sandboxes_of(first.pid))

    await wait_for_status(handle, BuildStatus.DEBUGGING, timeout=60)  # the fix pass runs pytest
    while not await tool_running():
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # inside the coder's command, in the sandbox
    first.wait()
    processes.worker()

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    await assert_exactly_once(crash_settings, sessions, view.build_id, offline_model)
    retried = retried_activities(await handle.fetch_history())
    assert retried == ["run_tools"]  # the tool run, run again by the new worker
