"""The E2B double's model: sandboxes in memory, each with a private root directory on disk.

Every state change goes through `Registry` under one lock, because the control API runs on the
server thread while tests call `destroy` from theirs.
"""

from __future__ import annotations

import json
import posixpath
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.doubles.e2b_process import RunningProcess

HOME = "/home/user"
DEFAULT_TIMEOUT = 300
State = Literal["running", "paused", "killed"]


@dataclass
class Counts:
    """What the double was asked to do; `destroys` (lost from outside) is not in `kills`."""

    creates: int = 0
    idempotent_replays: int = 0
    connects: int = 0
    pauses: int = 0
    resumes: int = 0
    kills: int = 0
    destroys: int = 0
    expirations: int = 0


@dataclass
class Sandbox:
    """One sandbox: its API-visible fields, its envd token, its root dir and live processes."""

    sandbox_id: str
    template_id: str
    metadata: dict[str, str]
    envs: dict[str, str]
    root: Path
    timeout: int
    auto_pause: bool
    started_at: datetime
    end_at: datetime
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    state: State = "running"
    processes: dict[int, RunningProcess] = field(default_factory=dict)

    def host_path(self, path: str) -> Path:
        """The host path under the root for a sandbox path (relative ones start at the home)."""
        absolute = posixpath.normpath(posixpath.join(HOME, path))
        # normpath of an absolute path cannot climb above "/", so this stays under the root.
        return self.root / absolute.lstrip("/")

    def sandbox_path(self, host: Path) -> str:
        relative = host.relative_to(self.root).as_posix()
        return "/" if relative == "." else f"/{relative}"

    def extend(self, now: datetime, timeout: int, *, only_longer: bool = False) -> None:
        end_at = now + timedelta(seconds=timeout)
        self.end_at = max(self.end_at, end_at) if only_longer else end_at

    def stop_processes(self) -> None:
        for process in list(self.processes.values()):
            process.kill()
        self.processes.clear()


@dataclass
class Registry:
    """All sandboxes the double knows, live or killed, with the counters."""

    base_dir: Path
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    skipped: timedelta = timedelta(0)
    _idempotency: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Reentrant: `connect` and friends hold it while `live` expires overdue sandboxes.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def now(self) -> datetime:
        """The double's clock: real time plus what the tests skipped."""
        return datetime.now(UTC) + self.skipped

    def create(self, body: dict[str, Any], key: str | None) -> Sandbox | None:
        """A new sandbox, or the one an earlier create with the same key made; None when the
        key was used with a different body."""
        fingerprint = json.dumps(body, sort_keys=True)
        with self._lock:
            if key is not None and key in self._idempotency:
                seen, sandbox_id = self._idempotency[key]
                if seen != fingerprint:
                    return None
                self.counts.idempotent_replays += 1
                return self.sandboxes[sandbox_id]
            sandbox = self._new(body)
            if key is not None:
                self._idempotency[key] = (fingerprint, sandbox.sandbox_id)
            self.counts.creates += 1
            return sandbox

    def _new(self, body: dict[str, Any]) -> Sandbox:
        sandbox_id = "i" + secrets.token_hex(10)
        root = Path(tempfile.mkdtemp(prefix=f"{sandbox_id}-", dir=self.base_dir))
        (root / HOME.lstrip("/")).mkdir(parents=True)
        now = self.now()
        sandbox = Sandbox(
            sandbox_id=sandbox_id,
            template_id=str(body["templateID"]),
            metadata=dict(body.get("metadata") or {}),
            envs=dict(body.get("envVars") or {}),
            root=root,
            timeout=int(body.get("timeout", DEFAULT_TIMEOUT)),
            auto_pause=bool(body.get("autoPause", False)),
            started_at=now,
            end_at=now,
        )
        sandbox.extend(now, sandbox.timeout)
        self.sandboxes[sandbox_id] = sandbox
        return sandbox

    def live(self, sandbox_id: str) -> Sandbox | None:
        """The sandbox if it is running or paused (after expiring overdue ones)."""
        self.expire_due()
        sandbox = self.sandboxes.get(sandbox_id)
        return sandbox if sandbox is not None and sandbox.state != "killed" else None

    def connect(self, sandbox_id: str, timeout: int) -> tuple[Sandbox, bool] | None:
        """Connect to a live sandbox, resuming it if paused; says whether it was resumed."""
        with self._lock:
            sandbox = self.live(sandbox_id)
            if sandbox is None:
                return None
            self.counts.connects += 1
            resumed = sandbox.state == "paused"
            if resumed:
                self.counts.resumes += 1
                sandbox.state = "running"
            sandbox.extend(self.now(), timeout, only_longer=not resumed)
            return sandbox, resumed

    def set_timeout(self, sandbox_id: str, timeout: int) -> bool:
        with self._lock:
            sandbox = self.live(sandbox_id)
            if sandbox is not None:
                sandbox.extend(self.now(), timeout)
            return sandbox is not None

    def pause(self, sandbox_id: str) -> Literal["paused", "already", "missing"]:
        with self._lock:
            sandbox = self.live(sandbox_id)
            if sandbox is None:
                return "missing"
            if sandbox.state == "paused":
                return "already"
            self._pause(sandbox)
            self.counts.pauses += 1
            return "paused"

    def kill(self, sandbox_id: str) -> bool:
        with self._lock:
            sandbox = self.live(sandbox_id)
            if sandbox is not None:
                self._lose(sandbox)
                self.counts.kills += 1
            return sandbox is not None

    def destroy(self, sandbox_id: str) -> None:
        """The sandbox is lost as if killed from outside (counted in `destroys`)."""
        with self._lock:
            sandbox = self.sandboxes[sandbox_id]
            if sandbox.state != "killed":
                self._lose(sandbox)
                self.counts.destroys += 1

    def expire_due(self) -> None:
        """Pause (auto-pause) or kill running sandboxes whose timeout has passed."""
        now = self.now()
        with self._lock:
            for sandbox in list(self.sandboxes.values()):
                if sandbox.state != "running" or sandbox.end_at > now:
                    continue
                self.counts.expirations += 1
                if sandbox.auto_pause:
                    self._pause(sandbox)
                else:
                    self._lose(sandbox)

    def close(self) -> None:
        with self._lock:
            for sandbox in self.sandboxes.values():
                if sandbox.state != "killed":
                    self._lose(sandbox)

    @staticmethod
    def _pause(sandbox: Sandbox) -> None:
        # A real pause snapshots memory, so processes would survive it; the double does not.
        sandbox.state = "paused"
        sandbox.stop_processes()

    @staticmethod
    def _lose(sandbox: Sandbox) -> None:
        sandbox.state = "killed"
        sandbox.stop_processes()
        shutil.rmtree(sandbox.root, ignore_errors=True)
