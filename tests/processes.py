"""Real processes a test can kill: a Temporal dev server and workers, and what they leave in git.

Crash and chaos tests run their own dev server and workers as child processes of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cofounder.settings import Settings
from cofounder.stack import port_open, temporal_command
from tests.helpers import model_stats, side_effects

BUILD_DEADLINE = 180.0


class Processes:
    """Child processes of one test, killed at its end whatever happened."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "COFOUNDER_DATA_DIR": str(self.settings.data_dir),
            "TEMPORAL_ADDRESS": self.settings.temporal_address,
            "COFOUNDER_TASK_QUEUE": self.settings.task_queue,
            "ANTHROPIC_BASE_URL": str(self.settings.anthropic_base_url),
            **(env or {}),
        }
        with open(self.logs / f"{name}.log", "ab") as log:
            child = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append(child)
        return child

    def temporal(self, command: list[str] | None = None) -> subprocess.Popen[bytes]:
        """The dev server (or `command`, one like it), once its port answers."""
        child = self.spawn("temporal", command or temporal_command(self.settings))
        host, port = self.settings.temporal_address.split(":")
        deadline = time.monotonic() + 30
        while not port_open(host, int(port)):
            assert child.poll() is None, f"the dev server exited:\n{self.log_tail('temporal')}"
            assert time.monotonic() < deadline, f"no dev server:\n{self.log_tail('temporal')}"
            time.sleep(0.1)
        return child

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The end of a child's log, for a failure message (CI keeps no files)."""
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def worker(
        self, name: str = "worker", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A worker process; `env` adds to (or overrides) the test's settings."""
        return self.spawn(name, [sys.executable, "-m", "cofounder", "worker"], env)

    def kill_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def demo_git(settings: Settings, *args: str) -> str:
    """A git command on the local owner's `demo` remote; its output."""
    remote = str(settings.git_remote("local", "demo"))
    done = subprocess.run(
        ["git", "--git-dir", remote, *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def git_branches(settings: Settings) -> list[str]:
    return demo_git(
        settings, "for-each-ref", "--format=%(refname)", "refs/heads/cofounder/"
    ).split()


def commits_beyond_main(settings: Settings, branch: str) -> int:
    return int(demo_git(settings, "rev-list", "--count", f"main..{branch}"))


async def assert_exactly_once(settings: Settings, sessions, build_id: str, model_url: str) -> None:
    effects = await side_effects(sessions, build_id)
    assert effects["pull_requests"] == 1
    assert effects["ledger_rows"] == model_stats(model_url)["served"]
    branches = git_branches(settings)
    assert branches == [f"refs/heads/cofounder/{build_id}"]
    assert commits_beyond_main(settings, f"cofounder/{build_id}") == 1
