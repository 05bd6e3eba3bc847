"""A build's sandbox: one session per build, in E2B or in a local bubblewrap runtime.

`SandboxRuntime` opens (or reconnects to) sessions; `SandboxSession` is what a build does in
one. Paths are relative to the session's workspace. worker.py picks the runtime from
`COFOUNDER_SANDBOX`; activities and workflows never know which one they have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Called with each chunk of a command's output as it arrives.
OnOutput = Callable[[bytes], Awaitable[None]]

# Dependency folders are rebuilt by the install step, never snapshotted; caches never matter.
NOT_SNAPSHOTTED = frozenset({".deps", "node_modules", "__pycache__", ".pytest_cache", ".npm"})


class SandboxGone(Exception):
    """The session no longer exists (killed, expired, or its worker's disk is gone)."""


@dataclass(frozen=True)
class SessionSpec:
    """Who a session belongs to. The same spec always names the same session."""

    build_id: str
    owner: str
    project: str
    language: str = "python"
    # Bumped each time a lost session is replaced, so the replacement is a new one.
    generation: int = 0

    @property
    def metadata(self) -> dict[str, str]:
        return {
            "cofounder_build": self.build_id,
            "cofounder_owner": self.owner,
            "cofounder_project": self.project,
            "cofounder_generation": str(self.generation),
        }

    @property
    def digest(self) -> str:
        """Lowercase hex naming this session, the same every time the spec is opened: each
        runtime derives its session name or idempotency key from it."""
        key = "\0".join(f"{k}={v}" for k, v in sorted(self.metadata.items()))
        return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """A live session as the runtime lists it: enough to find orphans."""

    session_id: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Command:
    """One command: an argv list, or a shell line run by /bin/sh."""

    argv: Sequence[str] | None = None
    shell: str | None = None
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    output_limit: int = 1_000_000
    # Only the install step reaches the network (the package index); nothing else ever does.
    network: bool = False
    # What it is for (install, test, tool or other), as the sandbox time metric and the
    # build's live events tell it.
    purpose: str = "other"

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("a command is an argv list or a shell line, not both or neither")

    def as_argv(self) -> list[str]:
        return list(self.argv) if self.argv is not None else ["/bin/sh", "-c", str(self.shell)]


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    log: bytes  # the first `output_limit` bytes, and the tail if there was more
    tail: bytes  # the last few KB, for summaries
    timed_out: bool = False
    truncated: bool = False


class SandboxSession(Protocol):
    """A build's workspace and the commands run in it."""

    session_id: str

    async def write_files(self, files: dict[str, bytes]) -> None: ...

    async def read_file(self, path: str) -> bytes: ...

    async def list_files(self) -> dict[str, int]:
        """Every file's path and size, dependency folders left out."""
        ...

    async def delete_files(self, paths: Sequence[str]) -> None: ...

    async def run(self, command: Command, on_output: OnOutput | None = None) -> CommandResult:
        """Run to completion; cancelling the caller kills the command and all it started."""
        ...

    async def snapshot(self) -> dict[str, bytes]:
        """The workspace's files (without dependency folders), to store and restore later."""
        ...

    async def restore(self, files: dict[str, bytes]) -> None:
        """Make the workspace exactly `files`."""
        ...

    async def pause(self) -> None:
        """Between phases: stop paying for an idle sandbox (resumed by the next connect)."""
        ...


class SandboxRuntime(Protocol):
    name: str

    async def open(self, spec: SessionSpec) -> SandboxSession:
        """The spec's session, created on first use; every later call reconnects to it."""
        ...

    async def connect(self, session_id: str) -> SandboxSession:
        """Reconnect (and resume); raises SandboxGone when it no longer exists."""
        ...

    async def list_sessions(self) -> list[SessionInfo]: ...

    async def close(self, session_id: str) -> bool:
        """Kill it and free everything; False when it was already gone."""
        ...


def snapshotted(path: str) -> bool:
    """Whether a workspace path belongs in snapshots."""
    return not any(part in NOT_SNAPSHOTTED for part in path.split("/"))
