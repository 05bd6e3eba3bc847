"""Local sandbox: a workspace's tests run under bubblewrap, with no network and no host secrets.

The workspace is the only writable place besides a private /tmp; the host Python is visible
read-only so pytest is at hand. Limits: wall clock, output size, memory, CPU time and processes.
Without bubblewrap nothing runs: there is no unsandboxed fallback.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from temporalio import activity

from activities.bwrap import SandboxLayout, bwrap_args, limit_args, materialise
from activities.errors import SandboxUnavailable, activity_boundary
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import TestReport, TestRequest
from cofounder.settings import Settings

log = structlog.get_logger()

# Counted per host uid, so concurrent runs share it: generous for pytest, fatal to a fork bomb.
MAX_PROCESSES = 256
SUMMARY_CHARS = 1500
TAIL_BYTES = 16_384
# Past this multiple of the output cap a run is flooding, not testing: it is stopped.
FLOOD_FACTOR = 4
PYTEST_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
PROBE_TOKEN = "cofounder-sandbox-ok"
INSTALL_HINT = "apt-get install bubblewrap (or set COFOUNDER_BWRAP_PATH)"

_SUMMARY_LINE = re.compile(r"^=*\s*(\d+ \w+.*) in [\d.]+s\b")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")


@dataclass
class RunOutcome:
    exit_code: int
    log: bytes
    tail: bytes
    timed_out: bool
    truncated: bool


class SandboxActivities:
    """Runs a workspace's tests in a fresh bubblewrap sandbox per call."""

    def __init__(
        self, settings: Settings, store: ArtifactStore, *, max_processes: int = MAX_PROCESSES
    ) -> None:
        self.settings = settings
        self.store = store
        self.max_processes = max_processes
        self._checked = False

    @activity.defn
    @activity_boundary
    async def run_tests(self, request: TestRequest) -> TestReport:
        """Run pytest on the workspace; the full log goes to the store, the report is short."""
        store = self.store.for_owner(request.owner)
        files = await store.get_tree(request.workspace_ref)
        command = [sys.executable, *PYTEST_ARGS]
        with tempfile.TemporaryDirectory(
            prefix="cofounder-sandbox-", ignore_cleanup_errors=True
        ) as tmp:
            layout = await asyncio.to_thread(materialise, Path(tmp), files)
            await self._check_runtime(layout)
            outcome = await self._run(layout, command)
        log_ref = await store.put_bytes(outcome.log)
        passed_count, failed_count = parse_counts(outcome.tail)
        log.info(
            "sandbox run finished",
            build_id=request.build_id,
            exit_code=outcome.exit_code,
            passed=passed_count,
            failed=failed_count,
            timed_out=outcome.timed_out,
        )
        return TestReport(
            passed=outcome.exit_code == 0 and not outcome.timed_out,
            exit_code=outcome.exit_code,
            passed_count=passed_count,
            failed_count=failed_count,
            summary=summarise(outcome),
            log_ref=log_ref,
            timed_out=outcome.timed_out,
            truncated=outcome.truncated,
        )

    async def _run(self, layout: SandboxLayout, command: Sequence[str]) -> RunOutcome:
        argv = limit_args(self.settings, self.max_processes)
        argv += bwrap_args(self._bwrap(), layout, command)
        return await run_limited(
            argv,
            timeout=self.settings.sandbox_timeout_seconds,
            output_limit=self.settings.sandbox_output_limit_bytes,
        )

    def _bwrap(self) -> str:
        path = shutil.which(self.settings.bwrap_path)
        if path is None:
            missing = f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
            raise SandboxUnavailable(f"{missing}; {self.settings.bwrap_path!r} was not found")
        return path

    async def _check_runtime(self, layout: SandboxLayout) -> None:
        """Once per worker: the sandbox starts and its Python has pytest, or nothing runs."""
        if self._checked:
            return
        for tool in ("prlimit", *(["setpriv"] if layout.privileged else [])):
            if shutil.which(tool) is None:
                hint = f"{tool} (util-linux) is required by the sandbox: apt-get install util-linux"
                raise SandboxUnavailable(hint)
        probe = [sys.executable, "-c", f"import pytest; print({PROBE_TOKEN!r})"]
        outcome = await self._run(layout, probe)
        if outcome.exit_code != 0 or PROBE_TOKEN.encode() not in outcome.log:
            detail = outcome.log.decode(errors="replace").strip()[-500:]
            problem = "bubblewrap (bwrap) is not runnable here"
            if "No module named 'pytest'" in detail:
                problem = f"pytest is not installed in the worker's Python ({sys.executable})"
            raise SandboxUnavailable(f"{problem}: {detail}")
        self._checked = True


async def run_limited(argv: Sequence[str], *, timeout: float, output_limit: int) -> RunOutcome:
    """Run `argv` in its own process group; on timeout, flood or cancellation
    the whole group is killed (bwrap's pid namespace then takes everything inside with it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        start_new_session=True,
    )
    output = _Output(output_limit)
    timed_out = False
    try:
        await asyncio.wait_for(_collect(proc, output), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
        await proc.wait()
    return RunOutcome(
        exit_code=proc.returncode if proc.returncode is not None else -signal.SIGKILL,
        log=output.log(),
        tail=output.tail,
        timed_out=timed_out,
        truncated=output.truncated,
    )


class _Output:
    """The first `limit` bytes and a short tail (for the pytest summary) of a stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = b""
        self.total = 0
        self.flooded = False

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def log(self) -> bytes:
        if not self.truncated:
            return bytes(self.head)
        marker = f"\n[... output truncated: {self.total} bytes, kept the first {self.limit}"
        marker += " and the last lines ...]\n"
        return bytes(self.head) + marker.encode() + self.tail


async def _collect(proc: asyncio.subprocess.Process, output: _Output) -> None:
    assert proc.stdout is not None
    while chunk := await proc.stdout.read(65536):
        output.add(chunk)
        if output.total > output.limit * FLOOD_FACTOR and not output.flooded:
            output.flooded = True
            _kill_group(proc.pid)
    await proc.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def parse_counts(tail: bytes) -> tuple[int, int]:
    """(passed, failed + errors) from pytest's last summary line, or (0, 0) without one."""
    for line in reversed(tail.decode(errors="replace").splitlines()):
        match = _SUMMARY_LINE.match(line.strip())
        if match:
            counts = {kind: int(n) for n, kind in _COUNT.findall(match.group(1))}
            failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
            return counts.get("passed", 0), failed
    return 0, 0


def summarise(outcome: RunOutcome) -> str:
    """The tail of the output, with the reason a run was stopped early."""
    text = outcome.tail.decode(errors="replace").strip()[-SUMMARY_CHARS:]
    if outcome.timed_out:
        text += "\n[sandbox: timed out]"
    elif outcome.truncated:
        text += "\n[sandbox: output truncated]"
    return text
