"""What the agent loop costs per model turn, measured side by side in one run.

1. Orchestration per turn: a build whose offline coder goes on for N turns (each a model turn
   and a tool run, a command in the local sandbox), against a bare workflow running the same
   2N activities as no-ops, on the same dev server. From each history, the loop's wall time
   minus the time inside its activities, per turn; and their ratio.
2. History: bytes per turn, and the runs of a 200-turn build (it continues as new); and the
   artifact store's growth per turn in both builds (linear growth keeps the two alike).
3. Prompt cache: of a demo build's input tokens from its third model call on, the share read
   from the cache (the offline model reports cache reads and writes for the prefixes marked).

    .venv/bin/python -m bench.bench_turns [--turns N] [--long M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.local_stack import bench_settings, local_temporal
from cofounder.db import LedgerEntry, make_engine, make_sessionmaker
from cofounder.logging import configure_logging
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import inject_faults, start_build
from worker import running_worker

TURN_ACTIVITIES = ("model_turn", "run_tools")


@activity.defn
async def noop(n: int) -> int:
    return n


@workflow.defn(sandboxed=False)
class BareTurns:
    """The same number of activities as N agent turns, doing nothing."""

    @workflow.run
    async def run(self, activities: int) -> int:
        for n in range(activities):
            await workflow.execute_activity(noop, n, start_to_close_timeout=timedelta(seconds=30))
        return activities


def loop_overhead(history: WorkflowHistory, kinds: tuple[str, ...] | None) -> tuple[float, float]:
    """(window, busy) seconds of the activities of `kinds` (all when None): from the first
    scheduled to the last completed, and the time spent inside them."""
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    first = last = None
    busy = 0.0
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            name, queued = scheduled[done.scheduled_event_id]
            if kinds is None or name in kinds:
                first = queued if first is None else first
                last = at
                busy += at - started[done.scheduled_event_id]
    assert first is not None and last is not None
    return last - first, busy


async def endless_build(
    client: Client, settings: Settings, sessions: object, model: str, turns: int
) -> list[WorkflowHistory]:
    inject_faults(model, *[{"endless": True, "role": "coder"}] * turns)
    # A goal of its own: nothing this build stores is already in the store from an earlier one.
    goal = f"A small library that turns titles into URL slugs ({uuid.uuid4().hex[:8]})"
    handle = await start_build(client, settings, sessions, goal=goal, max_turns=turns)  # type: ignore[arg-type]
    try:
        await handle.result()
    except WorkflowFailureError:
        pass  # it ends at max_turns, as a model that never finishes must
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    return [
        await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        for run in runs
    ]


async def bare(client: Client, activities: int) -> WorkflowHistory:
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BareTurns],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            BareTurns.run, activities, id=f"bare-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        await handle.result()
    return await handle.fetch_history()


async def cache_share(client: Client, settings: Settings, sessions: object) -> float:
    handle = await start_build(client, settings, sessions)  # type: ignore[arg-type]
    view = await handle.result()
    async with sessions() as session:  # type: ignore[operator]
        rows = (
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.build_id == view.build_id)
                .order_by(LedgerEntry.id)
            )
        ).all()
    later = rows[2:]
    read = sum(row.cache_read_input_tokens for row in later)
    total = sum(
        row.input_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens
        for row in later
    )
    return read / total


async def run(turns: int, long: int, repeats: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-turns-") as tmp,
        ServerThread(create_model_app()) as model,
    ):
        settings = await bench_settings(Path(tmp) / "data", model.url)
        engine = make_engine(settings.resolved_database_url)
        sessions = make_sessionmaker(engine)
        async with local_temporal() as env, running_worker(env.client, settings):
            agent, plain, sizes, stored = [], [], [], []
            for _ in range(repeats):  # alternating, so neither side always runs first
                before = store_bytes(settings)
                [history] = await endless_build(env.client, settings, sessions, model.url, turns)
                stored.append((store_bytes(settings) - before) / turns)
                window, busy = loop_overhead(history, TURN_ACTIVITIES)
                agent.append(((window - busy) / turns, window / turns))
                sizes.append(len(history.to_json()))
                window, busy = loop_overhead(await bare(env.client, 2 * turns), None)
                plain.append(((window - busy) / turns, window / turns))
            before = store_bytes(settings)
            longest = await endless_build(env.client, settings, sessions, model.url, long)
            long_stored = (store_bytes(settings) - before) / long
            long_sizes = [len(history.to_json()) for history in longest]
            share = await cache_share(env.client, settings, sessions)
        await engine.dispose()
    growth = (statistics.median(stored), long_stored)
    report(turns, agent, plain, statistics.median(sizes), long, long_sizes, share, growth)


def store_bytes(settings: Settings) -> int:
    """Everything the artifact store holds, in bytes."""
    return sum(p.stat().st_size for p in settings.artifacts_dir.rglob("*") if p.is_file())


def report(
    turns: int,
    agent: list[tuple[float, float]],
    plain: list[tuple[float, float]],
    size: float,
    long: int,
    long_sizes: list[int],
    share: float,
    growth: tuple[float, float],
) -> None:
    a_over = statistics.median(o for o, _ in agent)
    p_over = statistics.median(o for o, _ in plain)
    a_wall = statistics.median(w for _, w in agent)
    p_wall = statistics.median(w for _, w in plain)
    print(f"per model turn ({turns} turns, median of {len(agent)} runs)")
    print(f"  agent loop        overhead {a_over * 1000:6.1f} ms   wall {a_wall * 1000:6.1f} ms")
    print(f"  bare 2 no-ops     overhead {p_over * 1000:6.1f} ms   wall {p_wall * 1000:6.1f} ms")
    print(f"  overhead ratio    {a_over / p_over:.2f}x")
    print(f"history: {size / turns / 1024:.1f} KB per turn")
    print(
        f"  {long} turns: {len(long_sizes)} runs (continued as new), largest "
        f"{max(long_sizes) / 1e6:.2f} MB, all together {sum(long_sizes) / 1e6:.2f} MB"
    )
    print(
        f"artifact store: {growth[0] / 1024:.1f} KB per turn at {turns} turns, "
        f"{growth[1] / 1024:.1f} KB per turn at {long} turns"
    )
    print(f"prompt cache: {share:.0%} of input tokens read from the cache from the third call on")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30, help="turns per measured build")
    parser.add_argument("--long", type=int, default=200, help="turns of the long build")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure_logging(json=False, level=logging.WARNING)
    asyncio.run(run(args.turns, args.long, args.repeats))
