"""Live events fanned out: many clients following live builds through one API process.

The same batch of demo builds runs twice on one worker process, followed once by one client
per build and once by `--clients` clients spread over the builds (200 by default). For each
round: the delay from a phase change (its time in the event) to its arrival at a client, p50
and p99, and the API process's CPU time per event delivered; then the ratios of the crowded
round to the quiet one. The API and the worker are processes of their own (their CPU is
read from /proc); the clients share this process's event loop.

    .venv/bin/python -m bench.bench_events [--builds N] [--clients M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from bench.local_stack import bench_settings, local_temporal
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.settings import Settings
from tests.conftest import ServerThread, free_port

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    clients: int
    delays: list[float]  # seconds from a phase change (workflow time) to its arrival
    written: list[float]  # seconds from another event's write to its arrival
    delivered: int  # events of every kind delivered, all clients
    api_cpu: float  # seconds

    def lines(self) -> list[str]:
        per_event = self.api_cpu / max(self.delivered, 1) * 1e6
        return [
            f"{self.clients:4d} clients: {self.delivered} events delivered, API CPU "
            f"{self.api_cpu:.2f} s = {per_event:.0f} µs per event delivered",
            f"      phase change to arrival  p50 {ms(self.delays, 0.5)}  "
            f"p99 {ms(self.delays, 0.99)}",
            f"      event written to arrival p50 {ms(self.written, 0.5)}  "
            f"p99 {ms(self.written, 0.99)}",
        ]


def ms(values: list[float], q: float) -> str:
    return f"{quantile(values, q) * 1000:7.1f} ms"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def follow(http: httpx.AsyncClient, build_id: str, round_: Round) -> None:
    """Read one build's stream to its end, timing each phase's arrival."""
    url = f"/api/builds/{build_id}/events?until=settled"
    async with http.stream("GET", url) as stream:
        kind = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind != "end":
                round_.delivered += 1
                at = datetime.fromisoformat(json.loads(line[6:])["at"].replace("Z", "+00:00"))
                delay = time.time() - at.timestamp()
                (round_.delays if kind == "phase" else round_.written).append(delay)


async def one_round(api_url: str, api_pid: int, builds: int, clients: int) -> Round:
    round_ = Round(clients, [], [], 0, 0.0)
    limits = httpx.Limits(max_connections=clients + 10)
    async with httpx.AsyncClient(base_url=api_url, timeout=300, limits=limits) as http:
        body = {"project": "fanout", "goal": "a slugify library"}
        started = [(await http.post("/api/builds", json=body)).json()["id"] for _ in range(builds)]
        cpu = cpu_seconds(api_pid)
        await asyncio.gather(
            *(follow(http, started[n % builds], round_) for n in range(max(clients, builds)))
        )
        round_.api_cpu = cpu_seconds(api_pid) - cpu
    return round_


def spawn(role: str, settings: Settings, logs: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COFOUNDER_DATA_DIR": str(settings.data_dir),
        "COFOUNDER_TEMPORAL_ADDRESS": settings.temporal_address,
        "COFOUNDER_TASK_QUEUE": settings.task_queue,
        "ANTHROPIC_BASE_URL": str(settings.anthropic_base_url),
        "COFOUNDER_API_PORT": str(port),
        "COFOUNDER_RATE_LIMIT_PER_MINUTE": "0",
        "COFOUNDER_WORKER_METRICS_PORT": "0",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    log = (logs / f"{role}.log").open("wb")
    cofounder = Path(sys.executable).parent / "cofounder"
    return subprocess.Popen([str(cofounder), role], env=env, stdout=log, stderr=log)


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API at {url} did not start")


async def main(builds: int, clients: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, ServerThread(create_model_app()) as model:
        async with local_temporal() as env:
            address = env.client.service_client.config.target_host
            settings = await bench_settings(Path(tmp), model.url)
            settings = settings.model_copy(update={"temporal_address": address})
            port = free_port()
            processes = [spawn(r, settings, Path(tmp), port) for r in ("api", "worker")]
            try:
                api_url = f"http://127.0.0.1:{port}"
                await wait_ready(api_url)
                await one_round(api_url, processes[0].pid, 1, 1)  # warm-up
                quiet = await one_round(api_url, processes[0].pid, builds, builds)
                crowded = await one_round(api_url, processes[0].pid, builds, clients)
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(30)
    print(f"live events: {builds} demo builds per round, one worker process, one API process")
    print("\n".join(quiet.lines() + crowded.lines()))
    ratio = quantile(crowded.delays, 0.5) / quantile(quiet.delays, 0.5)
    ratio99 = quantile(crowded.delays, 0.99) / quantile(quiet.delays, 0.99)
    cpu = (crowded.api_cpu / crowded.delivered) / (quiet.api_cpu / quiet.delivered)
    print(
        f"{clients} vs {builds} clients: phase delay p50 {ratio:.2f}x, p99 {ratio99:.2f}x; "
        f"API CPU per event delivered {cpu:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.builds, args.clients))
