"""What Temporal and the API add on top of the work itself, measured side by side in one run.

1. Demo builds end to end (real dev server, offline model, worker, SQLite): from each history,
   wall time (workflow started -> completed) against the sum of activity times (each activity's
   started -> completed); the difference is orchestration overhead.
2. `POST /api/builds` over real HTTP against a bare `client.start_workflow` of the same workflow,
   payload and search attributes, on a task queue no worker polls, in alternating batches.

    .venv/bin/python -m bench.bench_build [--builds N] [--requests M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api import creation
from api.main import create_app
from bench.local_stack import bench_settings, local_temporal
from cofounder.db import make_engine, make_sessionmaker
from cofounder.logging import configure_logging
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.payloads import BUILD_STATUS, PROJECT, BuildInput, BuildStatus
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import GOAL, insert_build
from worker import running_worker
from workflows.build import BuildWorkflow

WARMUP = 10  # requests per side before measuring: connections, imports and caches settle
BATCH = 20  # requests per side per turn; the order of the two sides alternates every turn
TERMINATE_CONCURRENCY = 50

Batch = tuple[list[float], list[str]]  # latencies in seconds, workflow ids started


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


def api_batch(http: httpx.Client, count: int) -> Batch:
    """`count` sequential POSTs (blocking; run in a thread): latencies and workflow ids."""
    latencies, ids = [], []
    for _ in range(count):
        began = time.perf_counter()
        response = http.post("/api/builds", json={"project": "demo", "goal": GOAL})
        latencies.append(time.perf_counter() - began)
        response.raise_for_status()
        ids.append(response.json()["workflow_id"])
    return latencies, ids


async def raw_batch(client: Client, settings: Settings, count: int) -> Batch:
    """`count` sequential starts shaped exactly like the API's, minus its database rows."""
    latencies, ids = [], []
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(BUILD_STATUS, BuildStatus.QUEUED.value),
            SearchAttributePair(PROJECT, "demo"),
        ]
    )
    for _ in range(count):
        build_id = creation.new_build_id()
        payload = BuildInput(
            build_id=build_id, project="demo", goal=GOAL, max_attempts=settings.max_attempts
        )
        began = time.perf_counter()
        handle = await client.start_workflow(
            BuildWorkflow.run,
            payload,
            id=f"build-{build_id}",
            task_queue=settings.task_queue,
            search_attributes=attributes,
            memo={"request_id": uuid.uuid4().hex},
            rpc_timeout=creation.START_TIMEOUT,
        )
        latencies.append(time.perf_counter() - began)
        ids.append(handle.id)
    return latencies, ids


async def bench_start(
    client: Client, settings: Settings, requests: int
) -> tuple[list[float], list[float]]:
    """API and raw start latencies, interleaved in batches; every started workflow is ended."""
    api: list[float] = []
    raw: list[float] = []
    started: list[str] = []
    with ServerThread(create_app(settings, client=client)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            try:
                started += (await asyncio.to_thread(api_batch, http, WARMUP))[1]
                started += (await raw_batch(client, settings, WARMUP))[1]
                for turn in range(math.ceil(requests / BATCH)):
                    size = min(BATCH, requests - turn * BATCH)
                    sides: list[tuple[list[float], Callable[[], Awaitable[Batch]]]] = [
                        (api, partial(asyncio.to_thread, api_batch, http, size)),
                        (raw, partial(raw_batch, client, settings, size)),
                    ]
                    # Alternating who goes first keeps drift (GC, the server's own work) even.
                    for latencies, batch in sides if turn % 2 == 0 else sides[::-1]:
                        got, ids = await batch()
                        latencies += got
                        started += ids
            finally:
                await terminate(client, started)
    return api, raw


async def terminate(client: Client, workflow_ids: list[str]) -> None:
    """End the queued workflows this run started, a bounded number at a time."""
    for i in range(0, len(workflow_ids), TERMINATE_CONCURRENCY):
        chunk = workflow_ids[i : i + TERMINATE_CONCURRENCY]
        await asyncio.gather(
            *(client.get_workflow_handle(w).terminate(reason="benchmark done") for w in chunk)
        )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(timings: list[BuildTiming], api: list[float], raw: list[float]) -> None:
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
    api50, api99 = percentile(api, 50) * 1e3, percentile(api, 99) * 1e3
    raw50, raw99 = percentile(raw, 50) * 1e3, percentile(raw, 99) * 1e3
    rows = [
        (
            f"demo build ({len(timings)} runs, median)",
            f"wall {wall:.2f}s   activities {busy:.2f}s   overhead {overhead:.2f}s   "
            f"wall/activities {ratio:.2f}x",
        ),
        (f"POST /api/builds ({len(api)} req)", f"p50 {api50:5.1f}ms   p99 {api99:5.1f}ms"),
        (f"raw start_workflow ({len(raw)})", f"p50 {raw50:5.1f}ms   p99 {raw99:5.1f}ms"),
        ("ratio API/raw", f"p50 {api50 / raw50:5.2f}x    p99 {api99 / raw99:5.2f}x"),
    ]
    print()
    for label, figures in rows:
        print(f"{label:<31}{figures}")
    print(
        "\nMedians are per column, so the median overhead need not equal wall - activities.\n"
        "The API side writes database rows (project upsert + build insert, SQLite) and goes\n"
        "through HTTP; the raw side is the bare start_workflow call and writes no rows."
    )


async def run(builds: int, requests: int) -> None:
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="cofounder-bench-") as tmp,
        ServerThread(create_model_app()) as model,
    ):
        settings = await bench_settings(Path(tmp) / "data", model.url)
        async with local_temporal() as env:
            print(f"running {builds} demo builds ...", flush=True)
            timings = await bench_demo(env.client, settings, builds)
            print(f"timing {requests} API starts against {requests} raw starts ...", flush=True)
            # No worker polls this queue: started builds stay queued until terminated.
            idle = settings.model_copy(update={"task_queue": f"bench-idle-{uuid.uuid4().hex[:8]}"})
            api, raw = await bench_start(env.client, idle, requests)
    report(timings, api, raw)
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
