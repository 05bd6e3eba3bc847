"""What a sandbox session costs, measured side by side in one run.

1. Open to first output: open a new local session and run a Python one-liner in it, until its
   first output arrives, against the same one-liner started as a bare process. Alternating.
2. Cancel to dead: a running command's task is cancelled; the time until its process is gone,
   on the local runtime and on E2B (the SDK against the local double, so HTTP but no cloud).
   Then the same for a whole build: from the build's cancel request (a real dev server and
   worker, the offline model) until its test run's processes are gone.
3. Snapshot and restore of a 1,000-file workspace into the artifact store and a new session,
   against tar + untar of the same folder; then a second snapshot with nothing changed.

    .venv/bin/python -m bench.bench_sandbox [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowFailureError

from activities.sandbox import Command, SandboxRuntime, SandboxSession, SessionSpec
from activities.sandbox.e2b import E2BRuntime
from activities.sandbox.local import LocalRuntime
from bench.local_stack import bench_settings, local_temporal
from cofounder.artifacts import ArtifactStore
from cofounder.db import make_engine, make_sessionmaker
from cofounder.logging import configure_logging
from cofounder.offline_model.server import create_app as create_model_app
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.doubles.e2b import E2BDouble
from tests.helpers import inject_faults, start_build
from worker import running_worker

ONE_LINER = [sys.executable, "-c", "print('ok')"]
FILES = 1000


async def bare_first_output() -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*ONE_LINER, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    await proc.stdout.read(1)
    elapsed = time.perf_counter() - started
    await proc.wait()
    return elapsed


async def sandbox_first_output(runtime: LocalRuntime, n: int) -> float:
    first = asyncio.get_running_loop().create_future()

    async def on_output(chunk: bytes) -> None:
        if not first.done():
            first.set_result(time.perf_counter())

    started = time.perf_counter()
    session = await runtime.open(SessionSpec(f"bench-{n}", "bench", "bench"))
    await session.run(Command(argv=ONE_LINER), on_output)
    elapsed = first.result() - started
    await runtime.close(session.session_id)
    return elapsed


async def bench_first_output(settings: Settings, runs: int) -> None:
    runtime = LocalRuntime(settings)
    await sandbox_first_output(runtime, -1)  # the once-per-worker probe, and warm caches
    bare, sandboxed = [], []
    for n in range(runs):  # the order flips each run, so neither side always goes first
        if n % 2:
            sandboxed.append(await sandbox_first_output(runtime, n))
            bare.append(await bare_first_output())
        else:
            bare.append(await bare_first_output())
            sandboxed.append(await sandbox_first_output(runtime, n))
    b, s = statistics.median(bare), statistics.median(sandboxed)
    print(f"open to first output ({runs} runs, median)")
    print(f"  bare process     {b * 1000:7.1f} ms")
    print(f"  local session    {s * 1000:7.1f} ms   ratio {s / b:.2f}x")


async def cancel_to_dead(session: SandboxSession, alive: Callable[[], Awaitable[bool]]) -> float:
    task = asyncio.create_task(session.run(Command(shell="sleep 600", timeout=900)))
    while not await alive():
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    while await alive():
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def sleepers() -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if entry.read_bytes().split(b"\0")[:2] == [b"sleep", b"600"]:
                found.append(entry.parent.name)
        except OSError:
            continue
    return found


async def bench_cancel(settings: Settings, double: E2BDouble) -> None:
    print("cancel to dead (the command's process gone)")
    for name, runtime in runtimes(settings, double):
        session = await runtime.open(SessionSpec("bench-cancel", "bench", "bench"))

        async def alive() -> bool:
            return bool(sleepers())

        elapsed = await cancel_to_dead(session, alive)
        print(f"  {name:<16} {elapsed * 1000:7.1f} ms")
        await runtime.close(session.session_id)


def runtimes(settings: Settings, double: E2BDouble) -> list[tuple[str, SandboxRuntime]]:
    e2b = settings.model_copy(update={"sandbox": "e2b", "e2b_api_key": SecretStr(double.api_key)})
    return [("local", LocalRuntime(settings)), ("e2b (double)", E2BRuntime(e2b))]


def workspace_files() -> dict[str, bytes]:
    return {
        f"pkg{n // 50}/module_{n}.py": (f"VALUE_{n} = {n}\n" * 60).encode() for n in range(FILES)
    }


def tar_round_trip(folder: Path, into: Path) -> float:
    started = time.perf_counter()
    archive = into / "ws.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(folder), "."], check=True)
    (into / "out").mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(into / "out")], check=True)
    return time.perf_counter() - started


async def bench_snapshots(settings: Settings, double: E2BDouble, scratch: Path) -> None:
    files = workspace_files()
    size = sum(len(data) for data in files.values())
    print(f"snapshot + restore of {FILES} files ({size / 1e6:.1f} MB)")
    for name, runtime in runtimes(settings, double):
        store = ArtifactStore.local(scratch / f"artifacts-{runtime.name}")
        session = await runtime.open(SessionSpec("bench-snap", "bench", "bench"))
        await session.write_files(files)
        started = time.perf_counter()
        ref = await store.put_tree(await session.snapshot())
        snap = time.perf_counter() - started
        started = time.perf_counter()
        fresh = await runtime.open(SessionSpec("bench-snap", "bench", "bench", generation=1))
        await fresh.restore(await store.get_tree(ref))
        restore = time.perf_counter() - started
        started = time.perf_counter()
        assert await store.put_tree(await fresh.snapshot()) == ref
        again = time.perf_counter() - started
        print(
            f"  {name:<16} snapshot {snap:6.2f}s  restore {restore:6.2f}s"
            f"  unchanged snapshot {again:6.2f}s"
        )
        for session_id in (session.session_id, fresh.session_id):
            await runtime.close(session_id)
    folder = scratch / "plain"
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    (scratch / "tar").mkdir()
    print(f"  {'tar + untar':<16} {tar_round_trip(folder, scratch / 'tar'):6.2f}s (both ways)")


def test_run_processes() -> list[str]:
    """Pids of the build's test command (pytest, as the sandbox runs it) on this machine."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = entry.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pytest" in argv and b"no:cacheprovider" in argv:
            found.append(entry.parent.name)
    return found


async def cancel_one_build(client: Client, settings: Settings, sessions: Any, model: str) -> float:
    inject_faults(model, {"slow_tests": 600, "role": "coder"})
    handle = await start_build(client, settings, sessions)
    while not test_run_processes():
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    await handle.cancel()
    while test_run_processes():
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    return elapsed


async def bench_build_cancel(settings: Settings, double: E2BDouble, builds: int) -> None:
    print(f"build cancel request to test run dead ({builds} builds each, median and max)")
    with ServerThread(create_model_app()) as model:
        settings = settings.model_copy(update={"anthropic_base_url": model.url})
        engine = make_engine(settings.resolved_database_url)
        async with local_temporal() as env:
            for name, runtime in runtimes(settings, double):
                worker_settings = getattr(runtime, "settings", settings)
                async with running_worker(env.client, worker_settings):
                    times = [
                        await cancel_one_build(
                            env.client, settings, make_sessionmaker(engine), model.url
                        )
                        for _ in range(builds)
                    ]
                print(
                    f"  {name:<16} {statistics.median(times) * 1000:7.0f} ms"
                    f"   max {max(times) * 1000:.0f} ms"
                )
        await engine.dispose()


async def main(runs: int, builds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        scratch = Path(tmp)
        settings = await bench_settings(scratch / "data")
        with E2BDouble(scratch / "e2b") as double:
            for name, value in double.env().items():
                os.environ[name] = value
            os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
            await bench_first_output(settings, runs)
            await bench_cancel(settings, double)
            await bench_build_cancel(settings, double, builds)
            await bench_snapshots(settings, double, scratch)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="first-output runs per side")
    parser.add_argument("--builds", type=int, default=5, help="cancelled builds per runtime")
    args = parser.parse_args()
    configure_logging(json=False, level=logging.WARNING)
    asyncio.run(main(args.runs, args.builds))
