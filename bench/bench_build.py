"""What Temporal and the API add on top of the work itself, measured side by side in one run.

1. Demo builds end to end (real dev server, offline model, worker, SQLite): from each history,
   wall time (workflow started -> completed) against the sum of activity times (each activity's
   started -> completed); the difference is orchestration overhead.
2. Starting a build: `POST /api/builds` over real HTTP against Temporal's own HTTP API and a bare
   `client.start_workflow` starting the same workflow, in alternating batches (bench_start).

    .venv/bin/python -m bench.bench_build [--builds N] [--requests M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

from bench.bench_start import bench_starts, print_rows, start_rows
from bench.local_stack import bench_settings, local_temporal
from cofounder.db import make_engine, make_sessionmaker
from cofounder.logging import configure_logging
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.payloads import BuildInput, BuildStatus
from cofounder.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.helpers import GOAL, insert_build
from worker import running_worker
from workflows.build import BuildWorkflow


@dataclass(frozen=True)
class BuildTiming:
    build_id: str
    wall: float
    activities: float
    activity_count: int

    @property
    def overhead(self) -> float:
        return self.wall - self.activities

    @property
    def ratio(self) -> float:
        return self.wall / self.activities


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def history_timing(build_id: str, history: WorkflowHistory) -> BuildTiming:
    """Wall time and summed activity time (started -> completed) of one finished workflow."""
    started_at: dict[int, float] = {}
    wall_start = wall_end = 0.0
    busy = 0.0
    count = 0
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            wall_start = _seconds(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            wall_end = _seconds(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started_at[event.event_id] = _seconds(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            started_id = event.activity_task_completed_event_attributes.started_event_id
            busy += _seconds(event) - started_at[started_id]
            count += 1
    if not wall_end:
        raise RuntimeError(f"build {build_id} did not complete")
    return BuildTiming(build_id, wall_end - wall_start, busy, count)


async def bench_demo(client: Client, settings: Settings, builds: int) -> list[BuildTiming]:
    """Run demo builds one after another on a real worker and time each from its history."""
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    timings = []
    try:
        async with running_worker(client, settings):
            for _ in range(builds):
                build_id = await insert_build(sessions)
                handle = await client.start_workflow(
                    BuildWorkflow.run,
                    BuildInput(build_id=build_id, project="demo", goal=GOAL),
                    id=f"build-{build_id}",
                    task_queue=settings.task_queue,
                )
                view = await handle.result()
                if view.status != BuildStatus.SUCCEEDED:
                    why = view.last_error
                    raise RuntimeError(f"demo build {build_id} ended {view.status}: {why}")
                timings.append(history_timing(build_id, await handle.fetch_history()))
    finally:
        await engine.dispose()
    return timings


def report(timings: list[BuildTiming], starts: dict[str, list[float]]) -> None:
    print(f"\n{'build':<18}{'wall':>8}{'activities':>17}{'overhead':>10}{'wall/act':>10}")
    for t in timings:
        print(
            f"{t.build_id:<18}{t.wall:7.2f}s{t.activities:8.2f}s ({t.activity_count} acts)"
            f"{t.overhead:9.2f}s{t.ratio:9.2f}x"
        )
    wall = statistics.median(t.wall for t in timings)
    busy = statistics.median(t.activities for t in timings)
    overhead = statistics.median(t.overhead for t in timings)
    ratio = statistics.median(t.ratio for t in timings)
    rows = [
        (
            f"demo build ({len(timings)} runs, median)",
            f"wall {wall:.2f}s   activities {busy:.2f}s   overhead {overhead:.2f}s   "
            f"wall/activities {ratio:.2f}x",
        ),
        *start_rows(starts),
    ]
    print_rows(rows)
    print(
        "\nMedians are per column, so the median overhead need not equal wall - activities.\n"
        "The API side also admits the build and writes its build row (SQLite); the other two\n"
        "start the same workflow and write nothing else."
    )


async def run(builds: int, requests: int) -> None:
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="cofounder-bench-") as tmp,
        ServerThread(create_model_app()) as model,
    ):
        settings = await bench_settings(Path(tmp) / "data", model.url)
        port = free_port()
        async with local_temporal(http_port=port) as env:
            print(f"running {builds} demo builds ...", flush=True)
            timings = await bench_demo(env.client, settings, builds)
            print(f"timing {requests} starts per side ...", flush=True)
            # No worker polls this queue: started builds stay queued until terminated.
            idle = settings.model_copy(update={"task_queue": f"bench-idle-{uuid.uuid4().hex[:8]}"})
            http_api = f"http://127.0.0.1:{port}"
            starts = await bench_starts(env.client, idle, http_api, requests)
    report(timings, starts)
    print(f"\ntotal run {time.perf_counter() - began:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=5, help="demo builds to run (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="starts per side (default 200)")
    args = parser.parse_args()
    if args.builds < 1 or args.requests < 1:
        parser.error("--builds and --requests must be at least 1")
    configure_logging(json=False, level=logging.WARNING)
    asyncio.run(run(args.builds, args.requests))


if __name__ == "__main__":
    main()
