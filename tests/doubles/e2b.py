"""A local double of E2B's HTTP APIs, for exercising the real `e2b` SDK offline.

One ASGI app serves both sides: requests carrying `E2b-Sandbox-Id` (the SDK adds it to everything
it sends to a sandbox when `E2B_SANDBOX_URL` is set) go to envd, the rest to the control API.

    with E2BDouble(tmp_path) as double:
        for name, value in double.env().items():
            monkeypatch.setenv(name, value)
        sandbox = await AsyncSandbox.create(metadata={"owner": "o1"})
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from tests.conftest import ServerThread
from tests.doubles.e2b_control import control_app
from tests.doubles.e2b_envd import envd_app
from tests.doubles.e2b_state import Counts, Registry, Sandbox

ENVD_VERSION = "0.6.4"


class E2BDouble:
    """The control API and envd of E2B over sandboxes kept in memory, with roots under
    `base_dir` and commands run as real subprocesses. Use it as a context manager."""

    def __init__(
        self, base_dir: Path, api_key: str | None = None, envd_version: str = ENVD_VERSION
    ) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key or f"e2b_{secrets.token_hex(20)}"
        self.registry = Registry(base_dir)
        self._control = control_app(self.registry, self.api_key, envd_version)
        self._envd = envd_app(self.registry)
        self._server = ServerThread(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "e2b-sandbox-id" in Headers(scope=scope):
            await self._envd(scope, receive, send)
        else:
            await self._control(scope, receive, send)

    @property
    def sandboxes(self) -> dict[str, Sandbox]:
        """Every sandbox created, by id; killed ones stay with `state == "killed"`."""
        return self.registry.sandboxes

    @property
    def counts(self) -> Counts:
        return self.registry.counts

    @property
    def url(self) -> str:
        return self._server.url

    def env(self) -> dict[str, str]:
        """The environment variables that point the SDK at this double."""
        return {"E2B_API_KEY": self.api_key, "E2B_API_URL": self.url, "E2B_SANDBOX_URL": self.url}

    def destroy(self, sandbox_id: str) -> None:
        """Lose the sandbox as if E2B killed it from outside (counted in `counts.destroys`)."""
        self.registry.destroy(sandbox_id)

    def skip(self, seconds: float) -> None:
        """Move the double's clock on, so sandbox timeouts fall due without waiting for them."""
        self.registry.skipped += timedelta(seconds=seconds)

    def __enter__(self) -> E2BDouble:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        # Processes first: a stream following a process ends with it, and the server can stop.
        self.registry.close()
        self._server.__exit__(*exc)
