"""Many open builds on one worker process: its memory, and what the API's reads and starts cost
with one build open against with N open, side by side in one run.

Every build asks for approval, so after its plan it waits at `awaiting_approval`: a real open
workflow (cached on the worker or replayed for a query) for the cost of one model call and two
phase records. The starts are paced to what the worker keeps up with (`--backlog`). The dev
server, the offline model, `cofounder api` and one `cofounder worker` are processes of their
own; the bench's clients are in this process.

    .venv/bin/python -m bench.bench_scale [--builds N] [--concurrency C] [--backlog B]
        [--cached-workflows W] [--samples S] [--burst P] [--logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.app_stack import AppStack, app_stack, vm_bytes
from bench.bench_events import quantile
from bench.scale_metrics import cpu_lines, sticky_cache
from bench.scale_starts import WAITING, Starter, say
from cofounder.settings import Settings

# The worker's own default bound on its workflow cache.
CACHE_DEFAULT = Settings.model_fields["worker_cached_workflows"].default


@dataclass
class Latency:
    label: str
    seconds: list[float]
    from_row: int = 0  # answers from the database row: the live status query gave up

    def line(self) -> str:
        p50, p99 = (quantile(self.seconds, q) * 1000 for q in (0.5, 0.99))
        row = f"   {self.from_row} answered from the row" if self.from_row else ""
        return f"  {self.label:34} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms{row}"


async def time_gets(http: httpx.AsyncClient, ids: list[str], samples: int, label: str) -> Latency:
    """`samples` GET /api/builds/{id}, one at a time, each on a build drawn from `ids`."""
    rng, timed = random.Random(7), Latency(label, [])
    for _ in range(samples):
        build_id = rng.choice(ids)
        began = time.perf_counter()
        answer = await http.get(f"/api/builds/{build_id}")
        timed.seconds.append(time.perf_counter() - began)
        build = answer.json()
        assert answer.status_code == 200 and build["status"] == WAITING, answer.text
        # The live view knows the plan's cost per role; the row's budget has none.
        timed.from_row += not build["budget"]["spent_by_role_usd"]
    return timed


async def post_rate(starter: Starter, count: int) -> float:
    """Builds per second `POST /api/builds` sustains over `count` starts (not paced)."""
    began = time.perf_counter()
    await starter.start(count)
    return count / (time.perf_counter() - began)


@dataclass
class Opening:
    """What opening the bulk of the builds took, and the worker's state once they were open."""

    builds: int
    posted: float  # seconds until the last POST answered
    wall: float  # seconds until the last build waited for approval
    cpu: dict[str, float]  # seconds, per process
    rss: int
    peak: int
    cache: str

    def lines(self, total: int, bound: int) -> list[str]:
        return [
            f"{total} builds open on one worker process; {self.builds} of them opened in"
            f" {self.wall:.0f}s ({self.builds / self.wall:.1f} builds/s; the POSTs took"
            f" {self.posted:.0f}s, the plans still queued then took the rest)",
            *cpu_lines("CPU while opening", self.cpu, self.wall, self.builds),
            f"worker RSS with {total} open: {self.rss / 2**20:.0f} MiB"
            f" (peak so far {self.peak / 2**20:.0f} MiB; aim < 1024 MiB)",
            f"workflow cache (max_cached_workflows={bound}): {self.cache}",
        ]


async def open_builds(stack: AppStack, starter: Starter, count: int) -> Opening:
    """Open `count` more builds (paced) and wait until every build of the run waits."""
    say(f"opening {count} more builds, {starter.concurrency} requests at a time ...")
    cpu_before, began = stack.cpu(), time.perf_counter()
    await starter.start(count, paced=True)
    posted = time.perf_counter() - began
    await starter.until_waiting(starter.started)
    wall = time.perf_counter() - began
    cpu = {name: used - cpu_before.get(name, 0) for name, used in stack.cpu().items()}
    worker = stack.pid("worker")
    cache = await sticky_cache(stack.metrics_ports["worker"])
    return Opening(count, posted, wall, cpu, vm_bytes(worker), vm_bytes(worker, "VmHWM"), cache)


async def run(stack: AppStack, starter: Starter, args: argparse.Namespace) -> list[str]:
    http = starter.http
    first = await starter.start(1)
    await starter.until_waiting(1)
    await time_gets(http, first, 20, "warm-up")  # the API's and the worker's first calls
    quiet = await time_gets(http, first, args.samples, "GET, 1 open (that build)")
    quiet_rate = await post_rate(starter, args.burst)
    await starter.until_waiting(starter.started)
    opening = await open_builds(stack, starter, args.builds - starter.started)
    n = starter.started
    crowded = await time_gets(http, starter.ids, args.samples, f"GET, {n} open (any of them)")
    hot = await time_gets(http, first, args.samples, f"GET, {n} open (the first build)")
    crowded_rate = await post_rate(starter, args.burst)
    rss = vm_bytes(stack.pid("worker"))
    lines = [*opening.lines(n, args.cached_workflows), quiet.line(), crowded.line(), hot.line()]
    lines += ratio_lines(quiet, crowded, quiet_rate, crowded_rate, args)
    lines.append(
        f"worker RSS at the end ({starter.started} open, after the reads): {rss / 2**20:.0f} MiB"
    )
    return lines


def ratio_lines(
    quiet: Latency,
    crowded: Latency,
    quiet_rate: float,
    crowded_rate: float,
    args: argparse.Namespace,
) -> list[str]:
    p50 = quantile(crowded.seconds, 0.5) / quantile(quiet.seconds, 0.5)
    p99 = quantile(crowded.seconds, 0.99) / quantile(quiet.seconds, 0.99)
    return [
        f"  ratio {args.builds} open / 1 open{'':9}p50 {p50:6.2f}x     p99 {p99:6.2f}x"
        " (aim: p99 within 2x)",
        f"POST /api/builds, {args.burst} starts, {args.concurrency} at a time:"
        f" {quiet_rate:.1f} builds/s from 1 open, {crowded_rate:.1f} builds/s from"
        f" {args.builds} open ({crowded_rate / quiet_rate:.2f}x)",
    ]


async def main(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    cache = {"COFOUNDER_WORKER_CACHED_WORKFLOWS": str(args.cached_workflows)}
    async with app_stack(cache, keep_logs=args.logs) as stack:
        stack.worker("worker")
        limits = httpx.Limits(max_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120, limits=limits) as http:
            starter = Starter(http, stack.settings.resolved_database_url, args.concurrency)
            starter.backlog = args.backlog
            try:
                lines = await run(stack, starter, args)
            finally:
                await starter.close()
        failed = stack.log_count("worker", "Completing activity as failed")
    print("\n".join(lines))
    print(f"starts refused with 503 (and asked again): {len(starter.refused)}")
    print(f"activity attempts that failed (and were retried): {failed}")
    print(f"total run {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=10_000, help="builds open at once")
    parser.add_argument("--concurrency", type=int, default=16, help="POSTs in flight")
    parser.add_argument("--samples", type=int, default=300, help="GETs timed per side")
    parser.add_argument("--burst", type=int, default=300, help="POSTs timed per side")
    parser.add_argument(
        "--backlog",
        type=int,
        default=300,
        help="started builds not yet waiting, at most (0: no pacing)",
    )
    parser.add_argument(
        "--cached-workflows", type=int, default=CACHE_DEFAULT, help="the worker's workflow cache"
    )
    parser.add_argument("--logs", type=Path, help="copy the processes' logs to this folder")
    args = parser.parse_args()
    if args.builds < args.burst + 2:
        parser.error("--builds must be at least --burst + 2")
    asyncio.run(main(args))
