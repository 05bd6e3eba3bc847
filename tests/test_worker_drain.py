"""Draining: builds shared by several worker processes, one stopped by SIGTERM (it stops polling,
lets the steps it runs finish within its grace period and exits 0) and another SIGKILLed later,
all end once: one branch, one commit, one pull request, one ledger row per model answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle, WorkflowHistory

from cofounder.payloads import BuildStatus, BuildView
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.drain_history import InFlight, drain_problems, started_after
from tests.helpers import inject_faults, model_stats, sandboxes_of, side_effects, start_build
from tests.processes import Processes
from tests.test_chaos import assert_each_build_exactly_once, until  # the chaos test's own counts

BUILDS = 4
GRACE = 20  # seconds: the draining worker's COFOUNDER_WORKER_GRACE_SECONDS
EXIT_MARGIN = 10  # seconds past the grace a drained worker may take to exit
# A poll already answered when the signal lands may still hand the worker one task.
POLL_SLACK = 1.0
DEADLINE = 120.0
GRACE_ENV = {"COFOUNDER_WORKER_GRACE_SECONDS": str(GRACE)}
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
Handle = WorkflowHandle[Any, BuildView]
# The activities that run the build's tests in its sandbox: the steps worth draining.
TEST_RUNS = {"run_tests", "run_tools"}


def identity(pid: int) -> str:
    """A worker's identity in histories: the SDK's default, `pid@host`."""
    return f"{pid}@{os.uname().nodename}"


async def running_on(handles: list[Handle], worker: str) -> list[InFlight]:
    """The activities `worker` is running now, in every build."""
    found = []
    for handle in handles:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.state == STARTED and pending.last_worker_identity == worker:
                kind = pending.activity_type.name
                found.append(InFlight(handle.id, pending.activity_id, pending.attempt, kind))
    return found


async def running_tests(handles: list[Handle], pid: int) -> list[InFlight]:
    """What the worker `pid` runs, once that includes a test run (3 s) in its sandbox."""
    deadline = time.monotonic() + 60
    while True:
        in_flight = await running_on(handles, identity(pid))
        if sandboxes_of(pid) and {i.activity_type for i in in_flight} & TEST_RUNS:
            return in_flight
        assert time.monotonic() < deadline, "worker A never ran a test run"
        await asyncio.sleep(0.05)


@dataclass
class Drain:
    """Worker A's stop: what it was running, when it was signalled, how it ended."""

    worker: str  # its identity
    in_flight: list[InFlight]
    signalled_at: float  # epoch seconds
    exit_code: int | None  # None: still running past the grace and the margin
    took: float


async def drain(
    processes: Processes, worker: subprocess.Popen[bytes], handles: list[Handle]
) -> Drain:
    """SIGTERM `worker` while it runs a sandbox, start worker C, and wait for `worker` to exit."""
    in_flight = await running_tests(handles, worker.pid)
    # The process alone, as an orchestrator stops a container: its sandboxes are left to finish.
    os.kill(worker.pid, signal.SIGTERM)
    signalled_at = time.time()
    processes.worker("worker-c", GRACE_ENV)
    try:
        exit_code: int | None = await asyncio.to_thread(worker.wait, GRACE + EXIT_MARGIN)
    except subprocess.TimeoutExpired:
        exit_code = None
    took = time.time() - signalled_at
    return Drain(identity(worker.pid), in_flight, signalled_at, exit_code, took)


async def kill_mid_build(worker: subprocess.Popen[bytes], results: asyncio.Future[Any]) -> None:
    """SIGKILL `worker` (with its sandboxes) while it runs a sandbox and builds are unfinished."""
    in_sandbox = await until(lambda: bool(sandboxes_of(worker.pid)) or results.done(), 60)
    assert in_sandbox, "never came: worker B in a sandbox"
    assert not results.done(), "every build ended before worker B could be killed mid-build"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


@pytest.mark.slow
async def test_a_drained_worker_finishes_its_steps_and_builds_end_once(
    crash_settings: Settings, processes: Processes, sessions, offline_model: str
) -> None:
    # Every test run of every build takes 3 s: steps long enough to be caught running.
    inject_faults(offline_model, *[{"slow_tests": 3, "role": "coder"}] * BUILDS)
    processes.temporal()
    a, b = (processes.worker(name, GRACE_ENV) for name in ("worker-a", "worker-b"))
    client = await connect(crash_settings)
    goals = [f"A library that turns titles into URL slugs, variant {n}" for n in range(BUILDS)]
    handles = [await start_build(client, crash_settings, sessions, goal=g) for g in goals]
    results = asyncio.gather(*(handle.result() for handle in handles))

    stop = await drain(processes, a, handles)
    await kill_mid_build(b, results)

    views: list[BuildView] = await asyncio.wait_for(results, DEADLINE)
    assert [view.status for view in views] == [BuildStatus.SUCCEEDED] * BUILDS
    await assert_each_build_exactly_once(crash_settings, sessions, views)
    ledger_rows = sum([(await side_effects(sessions, v.build_id))["ledger_rows"] for v in views])
    assert ledger_rows == model_stats(offline_model)["distinct_answers"]
    assert_drained(processes, stop, {h.id: await h.fetch_history() for h in handles})


def shutdown_times(log: str) -> list[float]:
    """When each of the process's Temporal workers began its shutdown (the SDK logs it)."""
    return [
        datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00")).timestamp()
        for line in log.splitlines()
        if "Beginning worker shutdown" in line and line.startswith("{")
    ]


def assert_drained(
    processes: Processes, stop: Drain, histories: dict[str, WorkflowHistory]
) -> None:
    """Worker A said it drained, exited 0 in time, finished what it ran and took nothing new."""
    log = (processes.logs / "worker-a.log").read_text()
    assert stop.exit_code == 0, f"exit {stop.exit_code} after {stop.took:.1f}s:\n{log[-3000:]}"
    assert "worker draining" in log
    # Each of its Temporal workers (one per task queue) stops polling at once, not in turn.
    stops = [round(at - stop.signalled_at, 1) for at in shutdown_times(log)]
    assert stops and max(stops) < POLL_SLACK, f"pollers stopped at {stops}s after SIGTERM"
    # What A was running when told to stop, A finished, on the same attempt: no retry elsewhere.
    assert drain_problems(histories, stop.in_flight, stop.worker, stop.signalled_at) == []
    late = started_after(histories, stop.worker, stop.signalled_at + POLL_SLACK)
    assert late == [], f"worker A took tasks after SIGTERM: {late}"
