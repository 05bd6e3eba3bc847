"""Crashes mid-build: a SIGKILLed worker and a restarted Temporal server lose nothing.

These tests run their own dev server and workers as real processes, so they can kill them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from cofounder.payloads import BuildStatus
from cofounder.settings import Settings
from cofounder.stack import port_open, temporal_command
from cofounder.temporal import connect
from tests.conftest import free_port
from tests.helpers import (
    inject_faults,
    model_stats,
    sandboxes_of,
    side_effects,
    start_build,
    wait_for_status,
)

BUILD_DEADLINE = 180.0


class Processes:
    """Child processes of one test, killed at its end whatever happened."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "COFOUNDER_DATA_DIR": str(self.settings.data_dir),
            "TEMPORAL_ADDRESS": self.settings.temporal_address,
            "COFOUNDER_TASK_QUEUE": self.settings.task_queue,
            "ANTHROPIC_BASE_URL": str(self.settings.anthropic_base_url),
        }
        with open(self.logs / f"{name}.log", "ab") as log:
            child = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append(child)
        return child

    def temporal(self) -> subprocess.Popen[bytes]:
        child = self.spawn("temporal", temporal_command(self.settings))
        host, port = self.settings.temporal_address.split(":")
        deadline = time.monotonic() + 30
        while not port_open(host, int(port)):
            assert child.poll() is None, "the dev server exited; see temporal.log"
            assert time.monotonic() < deadline, "the dev server did not start"
            time.sleep(0.1)
        return child

    def worker(self) -> subprocess.Popen[bytes]:
        return self.spawn("worker", [sys.executable, "-m", "cofounder", "worker"])

    def kill_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


@pytest.fixture
def crash_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "temporal_ui_port": free_port(),
            "data_dir": settings.data_dir.resolve(),
        }
    )


@pytest.fixture
def processes(crash_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    crash_settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = Processes(crash_settings, tmp_path)
    yield running
    running.kill_all()


def git_branches(settings: Settings) -> list[str]:
    out = subprocess.run(
        [
            "git",
            "--git-dir",
            str(settings.git_dir / "demo.git"),
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/cofounder/",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def commits_beyond_main(settings: Settings, branch: str) -> int:
    out = subprocess.run(
        [
            "git",
            "--git-dir",
            str(settings.git_dir / "demo.git"),
            "rev-list",
            "--count",
            f"main..{branch}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out)


async def assert_exactly_once(settings: Settings, sessions, build_id: str, model_url: str) -> None:
    effects = await side_effects(sessions, build_id)
    assert effects["pull_requests"] == 1
    assert effects["ledger_rows"] == model_stats(model_url)["served"]
    branches = git_branches(settings)
    assert branches == [f"refs/heads/cofounder/{build_id}"]
    assert commits_beyond_main(settings, f"cofounder/{build_id}") == 1


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
    history = await handle.fetch_history()
    retried = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(retried) >= 2


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
