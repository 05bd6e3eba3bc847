"""The local runtime: each session is a folder on this worker, each command a bubblewrap run.

All of the isolation is per command (see bwrap.py): no network but for the install step, an
empty environment, uid 65534 without capabilities, a read-only host, the workspace as the only
writable place, and limits on wall time, CPU, memory, processes, file size and output. Without
bubblewrap nothing runs: there is no unsandboxed fallback.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from activities.errors import SandboxUnavailable
from activities.sandbox import (
    Command,
    CommandResult,
    OnOutput,
    SandboxGone,
    SessionInfo,
    SessionSpec,
    workspace,
)
from activities.sandbox.bwrap import SandboxLayout, bwrap_args, limit_args, prepare
from activities.sandbox.process import run_limited
from cofounder.metrics import timed_sandbox_run
from cofounder.settings import Settings

# Counted per host uid, so concurrent runs share it: generous for a test run, fatal to a fork bomb.
MAX_PROCESSES = 256
PROBE_TOKEN = "cofounder-sandbox-ok"
INSTALL_HINT = "apt-get install bubblewrap (or set COFOUNDER_BWRAP_PATH)"
META = "session.json"


class LocalRuntime:
    """Sessions under `<data dir>/sandboxes`, one folder each."""

    name = "local"

    def __init__(self, settings: Settings, *, max_processes: int = MAX_PROCESSES) -> None:
        self.settings = settings
        self.root = settings.data_dir.resolve() / "sandboxes"
        self.max_processes = max_processes
        self._checked = False

    async def open(self, spec: SessionSpec) -> LocalSession:
        session_id = _session_id(spec)
        folder = self.root / session_id
        layout = await asyncio.to_thread(prepare, folder)
        meta = json.dumps(spec.metadata).encode()
        await asyncio.to_thread((folder / META).write_bytes, meta)
        session = LocalSession(self, session_id, layout)
        await self._check(session)
        return session

    async def connect(self, session_id: str) -> LocalSession:
        folder = self.root / session_id
        if not (folder / META).is_file() or not (folder / "workspace").is_dir():
            raise SandboxGone(f"sandbox {session_id} is not on this worker")
        layout = await asyncio.to_thread(prepare, folder)
        session = LocalSession(self, session_id, layout)
        await self._check(session)
        return session

    async def list_sessions(self) -> list[SessionInfo]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[SessionInfo]:
        if not self.root.is_dir():
            return []
        found = []
        for meta in sorted(self.root.glob(f"*/{META}")):
            found.append(SessionInfo(meta.parent.name, json.loads(meta.read_text())))
        return found

    async def close(self, session_id: str) -> bool:
        folder = self.root / session_id
        if not folder.exists():
            return False
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return True

    def bwrap(self) -> str:
        path = shutil.which(self.settings.bwrap_path)
        if path is None:
            missing = f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
            raise SandboxUnavailable(f"{missing}; {self.settings.bwrap_path!r} was not found")
        return path

    async def _check(self, session: LocalSession) -> None:
        """Once per worker: the sandbox starts and its Python has pytest, or nothing runs."""
        if self._checked:
            return
        for tool in ("prlimit", *(["setpriv"] if session.layout.privileged else [])):
            if shutil.which(tool) is None:
                hint = f"{tool} (util-linux) is required by the sandbox: apt-get install util-linux"
                raise SandboxUnavailable(hint)
        probe = Command(argv=[sys.executable, "-c", f"import pytest; print({PROBE_TOKEN!r})"])
        result = await session.run(probe)
        if result.exit_code != 0 or PROBE_TOKEN.encode() not in result.log:
            detail = result.log.decode(errors="replace").strip()[-500:]
            problem = "bubblewrap (bwrap) is not runnable here"
            if "No module named 'pytest'" in detail:
                problem = f"pytest is not installed in the worker's Python ({sys.executable})"
            raise SandboxUnavailable(f"{problem}: {detail}")
        self._checked = True


def _session_id(spec: SessionSpec) -> str:
    """Stable per spec, so opening twice reconnects; safe as a folder name."""
    return "local-" + spec.digest[:24]


class LocalSession:
    def __init__(self, runtime: LocalRuntime, session_id: str, layout: SandboxLayout) -> None:
        self.runtime = runtime
        self.session_id = session_id
        self.layout = layout

    @property
    def folder(self) -> Path:
        return self.layout.workspace

    async def write_files(self, files: dict[str, bytes]) -> None:
        await self._in_folder(workspace.write_files, files)

    async def read_file(self, path: str) -> bytes:
        data: bytes = await self._in_folder(workspace.read_file, path)
        return data

    async def list_files(self) -> dict[str, int]:
        listed: dict[str, int] = await self._in_folder(workspace.list_files)
        return listed

    async def delete_files(self, paths: Sequence[str]) -> None:
        await self._in_folder(workspace.delete_files, list(paths))

    async def snapshot(self) -> dict[str, bytes]:
        files: dict[str, bytes] = await self._in_folder(workspace.snapshot)
        return files

    async def restore(self, files: dict[str, bytes]) -> None:
        await self._in_folder(workspace.restore, files)

    async def _in_folder(self, work: Callable[..., Any], *args: Any) -> Any:
        """Do `work` on the workspace, off the event loop; a folder that is gone (its worker's
        disk lost, or the session closed) is a lost sandbox, not an empty one."""
        if not self.folder.is_dir():
            raise SandboxGone(f"sandbox {self.session_id} is gone from this worker")
        return await asyncio.to_thread(work, self.folder, *args)

    async def pause(self) -> None:
        """Nothing runs between commands here, so there is nothing to pause."""

    @timed_sandbox_run("local")
    async def run(self, command: Command, on_output: OnOutput | None = None) -> CommandResult:
        settings = self.runtime.settings
        argv = limit_args(settings, self.runtime.max_processes, command.timeout)
        argv += bwrap_args(
            self.runtime.bwrap(),
            self.layout,
            command.as_argv(),
            cwd=command.cwd,
            env=command.env,
            network=command.network,
        )
        return await run_limited(
            argv, timeout=command.timeout, output_limit=command.output_limit, on_output=on_output
        )
