"""A redis-server of a test's own (Debian's; scripts/test installs it), which it may stop and
start again on the same port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


class RedisServer:
    """A redis-server of the tests' own on a free port, keeping nothing on disk."""

    def __init__(self, binary: str, root: Path, password: str | None = None) -> None:
        self.binary, self.root, self.password = binary, root, password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (again, on the same port) and wait until it answers PING."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        argv += ["--requirepass", self.password] if self.password else []
        with open(self.root / "redis.log", "ab") as log:
            self.process = subprocess.Popen(argv, cwd=self.root, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while not self._answers():
            log_text = (self.root / "redis.log").read_text(errors="replace")
            assert self.process.poll() is None, f"redis-server exited:\n{log_text}"
            assert time.monotonic() < deadline, f"redis-server did not answer:\n{log_text}"
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def redis_binary() -> str:
    """redis-server's path; without it the tests are skipped, except in CI, where they fail."""
    found = shutil.which("redis-server")
    if found:
        return found
    reason = "redis-server is not installed (scripts/test installs Debian's)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run these tests", pytrace=False)
    pytest.skip(reason)
