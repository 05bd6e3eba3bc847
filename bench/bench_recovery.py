"""How fast a dead worker's step moves on: a worker SIGKILLed inside a model call, a sandbox run
and publishing, with a new worker started at once, against the same build left alone.

For each phase, side by side in one run: a build with the same injected slowness and no kill,
then one whose worker is killed inside that phase. Recovery is the time from the kill to the
start of the step's retry on the new worker (from the history); the ratio is the killed build's
wall time over the undisturbed one's.

    .venv/bin/python -m bench.bench_recovery
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHistory

from cofounder.db import make_engine, make_sessionmaker
from cofounder.db.migrate import upgrade
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.payloads import BuildStatus, BuildView
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.conftest import ServerThread, free_ports
from tests.helpers import inject_faults, model_stats, sandboxes_of, start_build
from tests.processes import Processes

STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
# Each phase: the faults that give it a window to land in, and how to tell the kill is inside.
PHASES: dict[str, dict[str, Any]] = {
    "model call": {"faults": [{"delay": 2.0, "role": "reviewer"}], "inside": "model"},
    "sandbox run": {"faults": [{"slow_tests": 2.0, "role": "coder"}], "inside": "sandbox"},
    "publishing": {"faults": [], "inside": "publishing"},
}


async def wait_until(condition: Callable[[], Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await condition() if asyncio.iscoroutinefunction(condition) else not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the kill point never came")
        await asyncio.sleep(0.005)


def retry_start(history: WorkflowHistory) -> tuple[str, float] | None:
    """The first retried activity (attempt > 1): its type and when that attempt started."""
    scheduled: dict[int, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:
                name = scheduled[started.scheduled_event_id]
                return name, event.event_time.ToNanoseconds() / 1e9
    return None


def wall(history: WorkflowHistory) -> float:
    return (
        history.events[-1].event_time.ToNanoseconds() - history.events[0].event_time.ToNanoseconds()
    ) / 1e9


class Bench:
    def __init__(self, settings: Settings, processes: Processes, model_url: str) -> None:
        self.settings = settings
        self.processes = processes
        self.model_url = model_url
        self.sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        self.client: Client | None = None

    async def build(self, phase: str, kill: bool) -> tuple[float, str, float | None]:
        """One build with the phase's faults; with `kill`, its worker dies inside the phase."""
        assert self.client is not None
        inject_faults(self.model_url, *PHASES[phase]["faults"])
        worker = self.processes.worker()
        handle = await start_build(self.client, self.settings, self.sessions)
        killed_at = None
        if kill:
            await self._inside(PHASES[phase]["inside"], handle, worker.pid)
            os.killpg(worker.pid, signal.SIGKILL)
            killed_at = time.time()
            worker.wait()
            worker = self.processes.worker()
        view: BuildView = await handle.result()
        assert view.status == BuildStatus.SUCCEEDED, view
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        history = await handle.fetch_history()
        retried = retry_start(history)
        if killed_at is None or retried is None:
            return wall(history), "-", None
        return wall(history), retried[0], retried[1] - killed_at

    async def _inside(self, where: str, handle: Any, pid: int) -> None:
        if where == "model":
            await wait_until(lambda: model_stats(self.model_url)["in_flight"] > 0)
        elif where == "sandbox":
            await wait_until(lambda: bool(sandboxes_of(pid)))
        else:

            async def publishing() -> bool:
                pending = (await handle.describe()).raw_description.pending_activities
                return any(
                    a.activity_type.name == "publish" and a.state == STARTED for a in pending
                )

            await wait_until(publishing)


async def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="cofounder-bench-") as tmp,
        ServerThread(create_model_app()) as model,
    ):
        data = Path(tmp) / "data"
        frontend, ui = free_ports(2)
        settings = Settings(
            data_dir=data,
            anthropic_api_key=None,
            anthropic_base_url=model.url,
            temporal_address=f"127.0.0.1:{frontend}",
            temporal_ui_port=ui,
            task_queue="bench-recovery",
            _env_file=None,  # type: ignore[call-arg]
        )
        data.mkdir(parents=True)
        await asyncio.to_thread(upgrade, settings.resolved_database_url)
        processes = Processes(settings, Path(tmp))
        try:
            processes.temporal()
            bench = Bench(settings, processes, model.url)
            bench.client = await connect(settings)
            print(
                f"{'worker killed inside':22} {'retried step':14} {'recovery':>9}"
                f" {'wall alone':>11} {'wall killed':>12} {'ratio':>7}"
            )
            for phase in PHASES:
                alone, _, _ = await bench.build(phase, kill=False)
                killed, step, recovery = await bench.build(phase, kill=True)
                shown = f"{recovery:8.1f}s" if recovery is not None else "      n/a"
                print(
                    f"{phase:22} {step:14} {shown} {alone:10.1f}s {killed:11.1f}s"
                    f" {killed / alone:6.2f}x"
                )
        finally:
            processes.kill_all()


if __name__ == "__main__":
    asyncio.run(main())
