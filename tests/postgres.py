"""A PostgreSQL server of a test's own, which the test may stop and start again.

Debian's PostgreSQL 15 binaries (scripts/test installs them); as root, the server runs as the
`postgres` user, which may not enter root's home, so every command runs from the data folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


class LocalPostgres:
    """A cluster under `root`, which must be a folder the postgres user can reach (pytest's
    tmp_path, under root's private temp folder, is not)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    @staticmethod
    def available() -> bool:
        return (BIN / "initdb").exists()

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], cwd=self.root, check=True, capture_output=True, timeout=60)

    def init(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log")]
        self._run(*pg_ctl, "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` ends every session at once, as a crash or a failover does."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
