"""Scale-out by worker processes: the same batch of demo builds run on one worker process and
then on two, side by side in one run.

Each round starts its builds at once through `POST /api/builds` and waits for all of them to
succeed (review sessions are off, so a build ends at its pull request). From the histories:
the round's throughput (builds over the first start to the last end) and each build's time
(started to completed), p50 and p99, and which worker ran each activity. The dev server, the
offline model, `cofounder api` and the workers are processes of their own.

    .venv/bin/python -m bench.bench_workers [--builds N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.app_stack import AppStack, app_stack
from bench.bench_events import quantile
from bench.scale_metrics import cpu_lines
from cofounder.payloads import BuildStatus, BuildView, build_workflow_id
from workflows.build import BuildWorkflow

GOAL = "A small library that turns titles into URL slugs"


@dataclass
class Round:
    workers: int
    starts: list[float] = field(default_factory=list)  # epoch seconds, per build
    ends: list[float] = field(default_factory=list)
    activities: dict[str, int] = field(default_factory=dict)  # per worker identity
    cpu: dict[str, float] = field(default_factory=dict)  # seconds, per process
    wall: float = 0.0

    @property
    def per_minute(self) -> float:
        return len(self.starts) / (max(self.ends) - min(self.starts)) * 60

    def times(self) -> list[float]:
        return [end - start for start, end in zip(self.starts, self.ends, strict=True)]

    def line(self) -> str:
        times = self.times()
        share = " / ".join(str(n) for n in sorted(self.activities.values(), reverse=True))
        return (
            f"{self.workers} worker{'s' if self.workers > 1 else ' '}  {len(times)} builds"
            f"  {self.per_minute:6.1f} builds/min   build time p50 {quantile(times, 0.5):5.1f}s"
            f"  p99 {quantile(times, 0.99):5.1f}s   activities per worker {share}"
        )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seconds(history: WorkflowHistory, kind: EventType.ValueType) -> float:
    event = next(e for e in history.events if e.event_type == kind)
    return event.event_time.ToNanoseconds() / 1e9


def count_activities(history: WorkflowHistory, into: dict[str, int]) -> None:
    """Add each activity a worker ran to its worker's count (by the identity that started it)."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            identity = event.activity_task_started_event_attributes.identity
            into[identity] = into.get(identity, 0) + 1


async def start_all(http: httpx.AsyncClient, count: int) -> list[str]:
    """Start `count` builds at once; their workflow ids."""
    body = {"project": "workers", "goal": GOAL}
    answers = await asyncio.gather(*(http.post("/api/builds", json=body) for _ in range(count)))
    return [build_workflow_id(answer.raise_for_status().json()["id"]) for answer in answers]


async def one_round(stack: AppStack, client: Client, builds: int, workers: int) -> Round:
    """`builds` demo builds at once; all must succeed."""
    result = Round(workers)
    cpu, began = stack.cpu(), time.perf_counter()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        ids = await start_all(http, builds)
    for workflow_id in ids:
        handle = client.get_workflow_handle_for(BuildWorkflow.run, workflow_id)
        view: BuildView = await handle.result()
        assert view.status == BuildStatus.SUCCEEDED, f"{workflow_id}: {view.last_error}"
        history = await handle.fetch_history()
        result.starts.append(seconds(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED))
        result.ends.append(seconds(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED))
        count_activities(history, result.activities)
    result.wall = time.perf_counter() - began
    result.cpu = {name: used - cpu.get(name, 0) for name, used in stack.cpu().items()}
    return result


async def run(stack: AppStack, builds: int) -> list[Round]:
    client = await Client.connect(
        stack.settings.temporal_address, data_converter=pydantic_data_converter
    )
    stack.worker("worker-1")
    say("warm-up build on worker 1 ...")
    await one_round(stack, client, 1, 1)  # the worker's first imports, sandbox and git remote
    say(f"{builds} builds on one worker ...")
    alone = await one_round(stack, client, builds, 1)
    stack.worker("worker-2")
    say("warm-up builds on both workers ...")
    await one_round(stack, client, 4, 2)
    say(f"{builds} builds on two workers ...")
    paired = await one_round(stack, client, builds, 2)
    return [alone, paired]


async def main(builds: int, logs: Path | None) -> None:
    began = time.perf_counter()
    # Without review sessions a build's workflow ends (succeeded) when its pull request opens.
    async with app_stack({"COFOUNDER_REVIEW_SESSIONS": "false"}, keep_logs=logs) as stack:
        alone, paired = await run(stack, builds)
    print(f"the same {builds} demo builds, started at once, on 1 and then 2 worker processes")
    for round_ in (alone, paired):
        print(round_.line())
        print("\n".join(cpu_lines("  CPU", round_.cpu, round_.wall, builds)))
    p50, p99 = (quantile(paired.times(), q) / quantile(alone.times(), q) for q in (0.5, 0.99))
    print(
        f"2 vs 1 worker: throughput {paired.per_minute / alone.per_minute:.2f}x,"
        f" build time p50 {p50:.2f}x, p99 {p99:.2f}x"
    )
    print(f"total run {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=12, help="demo builds per round")
    parser.add_argument("--logs", type=Path, help="copy the processes' logs to this folder")
    args = parser.parse_args()
    asyncio.run(main(args.builds, args.logs))
