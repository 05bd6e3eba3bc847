"""The app's own processes for the scale-out benches: the offline model, the API and any number
of workers, each a `cofounder` command of its own beside the bench's dev server, with what
/proc says about them (CPU time, resident memory).

Processes rather than threads: a worker's memory and CPU are then its own, and several
workers really run side by side as they would on a deployment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.local_stack import bench_settings, local_temporal
from bench.scale_metrics import MACHINE, TICKS, dev_server_pid, machine_seconds
from cofounder.settings import Settings
from tests.conftest import free_port

COFOUNDER = str(Path(sys.executable).parent / "cofounder")


@dataclass
class AppStack:
    """The running processes, by name, and how to reach the API and the dev server."""

    settings: Settings
    logs: Path
    env: dict[str, str]
    api_url: str = ""
    model_url: str = ""
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    temporal_pid: int | None = None

    def spawn(self, name: str, role: str, extra: dict[str, str] | None = None) -> int:
        """Start `cofounder <role>` as process `name`; its pid. Its own session, so a signal
        meant for it never reaches the bench; started in the logs' folder, where no `.env` is."""
        env = {**self.env, **(extra or {})}
        with (self.logs / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(
                [COFOUNDER, role],
                env=env,
                cwd=self.logs,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.children[name] = child
        return child.pid

    def worker(self, name: str) -> int:
        """Another worker process on the same task queue, serving metrics on a port of its own."""
        port = free_port()
        self.metrics_ports[name] = port
        return self.spawn(name, "worker", {"COFOUNDER_WORKER_METRICS_PORT": str(port)})

    def stop(self, name: str, timeout: float = 60) -> int:
        """SIGTERM one process (the group: its sandboxes too) and wait for it; its exit code."""
        child = self.children.pop(name)
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            return child.wait()

    def stop_all(self) -> None:
        for name in list(self.children):
            self.stop(name, timeout=30)

    def log_count(self, name: str, text: str) -> int:
        """Lines of a process's log that contain `text`."""
        with (self.logs / f"{name}.log").open(errors="replace") as log:
            return sum(text in line for line in log)

    def pid(self, name: str) -> int:
        return self.children[name].pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each running process (with its reaped children), the dev
        server, the bench itself (its clients) and the whole machine."""
        used = {name: cpu_seconds(child.pid) for name, child in self.children.items()}
        used["bench"] = cpu_seconds(os.getpid())
        if self.temporal_pid is not None:
            used["temporal"] = cpu_seconds(self.temporal_pid)
        used[MACHINE] = machine_seconds()
        return used


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and of the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS


def vm_bytes(pid: int, key: str = "VmRSS") -> int:
    """A memory figure of a process from /proc (VmRSS: resident now, VmHWM: its peak); psutil
    is not installed here."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for pid {pid}")


def stack_env(settings: Settings, model_url: str, extra: dict[str, str]) -> dict[str, str]:
    """The environment every child gets: this one with the bench's settings over it."""
    env = {
        **os.environ,
        "COFOUNDER_DATA_DIR": str(settings.data_dir),
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "COFOUNDER_TASK_QUEUE": settings.task_queue,
        "ANTHROPIC_BASE_URL": model_url,
        # The benches act as one user sending thousands of requests a minute.
        "COFOUNDER_RATE_LIMIT_PER_MINUTE": "0",
        # The dev user's tier, named here so a caller's environment cannot put a quota on it.
        "COFOUNDER_LOCAL_TIER": "unlimited",
        "COFOUNDER_AUTH": "dev",
        **extra,
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return env


async def wait_healthy(url: str, path: str, timeout: float = 60) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(int(timeout * 10)):
            try:
                if (await http.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing answered {url}{path}")


@asynccontextmanager
async def app_stack(
    extra_env: dict[str, str] | None = None, keep_logs: Path | None = None
) -> AsyncIterator[AppStack]:
    """A dev server, the offline model and the API, all up; workers are the caller's to add.
    The processes' logs are copied to `keep_logs` at the end, when given."""
    with tempfile.TemporaryDirectory(prefix="cofounder-bench-") as tmp:
        async with local_temporal() as temporal:
            settings = await bench_settings(Path(tmp) / "data")
            address = temporal.client.service_client.config.target_host
            settings = settings.model_copy(update={"temporal_address": address})
            model_port, api_port = free_port(), free_port()
            model_url = f"http://127.0.0.1:{model_port}"
            extra = {"COFOUNDER_OFFLINE_MODEL_PORT": str(model_port)}
            extra |= {"COFOUNDER_API_PORT": str(api_port), **(extra_env or {})}
            env = stack_env(settings, model_url, extra)
            stack = AppStack(settings, Path(tmp), env, f"http://127.0.0.1:{api_port}", model_url)
            stack.temporal_pid = dev_server_pid()
            try:
                stack.spawn("model", "offline-model")
                stack.spawn("api", "api")
                await wait_healthy(model_url, "/_control/stats")
                await wait_healthy(stack.api_url, "/healthz")
                yield stack
            finally:
                stack.stop_all()
                if keep_logs is not None:
                    keep_logs.mkdir(parents=True, exist_ok=True)
                    for log in Path(tmp).glob("*.log"):
                        shutil.copy(log, keep_logs / log.name)
