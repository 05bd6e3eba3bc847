"""The E2B runtime: each session is an E2B sandbox, driven through the `e2b` async SDK.

A build's sandbox is found again by its metadata, and created under an idempotency key
derived from the build, so a retried or re-dispatched open never makes a second one. Between
phases it is paused (no cost while the model thinks); connecting resumes it. Commands run with
the sandbox's own network; no secret of ours is ever put in a sandbox's environment.
"""

from __future__ import annotations

from typing import Any

from e2b import AsyncSandbox, SandboxQuery

from activities.sandbox import SessionInfo, SessionSpec
from activities.sandbox.e2b_errors import vendor_errors
from activities.sandbox.e2b_session import REQUEST_TIMEOUT, WORKSPACE, E2BSession
from cofounder.settings import Settings


class E2BRuntime:
    name = "e2b"

    def __init__(self, settings: Settings) -> None:
        assert settings.e2b_api_key is not None  # the settings refuse e2b without a key
        self.settings = settings
        self._opts: dict[str, Any] = {
            "api_key": settings.e2b_api_key.get_secret_value(),
            "request_timeout": REQUEST_TIMEOUT,
        }

    async def open(self, spec: SessionSpec) -> E2BSession:
        async with vendor_errors():
            found = await self._find(spec)
            if found is not None:
                return await self.connect(found)
            sandbox = await AsyncSandbox.create(
                template=self._template(spec.language),
                timeout=self.settings.e2b_sandbox_timeout_seconds,
                metadata=spec.metadata,
                idempotency_key=idempotency_key(spec),
                lifecycle={"on_timeout": "pause"},
                **self._opts,
            )
            await sandbox.files.make_dir(WORKSPACE)
            return E2BSession(sandbox)

    async def connect(self, session_id: str) -> E2BSession:
        async with vendor_errors():
            sandbox = await AsyncSandbox.connect(
                session_id, timeout=self.settings.e2b_sandbox_timeout_seconds, **self._opts
            )
            return E2BSession(sandbox)

    async def list_sessions(self) -> list[SessionInfo]:
        return [
            SessionInfo(sandbox.sandbox_id, dict(sandbox.metadata))
            for sandbox in await self._list(None)
            if "cofounder_build" in sandbox.metadata
        ]

    async def close(self, session_id: str) -> bool:
        async with vendor_errors():
            return bool(await AsyncSandbox.kill(session_id, **self._opts))

    async def _find(self, spec: SessionSpec) -> str | None:
        matches = await self._list(spec.metadata)
        return matches[0].sandbox_id if matches else None

    async def _list(self, metadata: dict[str, str] | None) -> list[Any]:
        async with vendor_errors():
            pages = AsyncSandbox.list(query=SandboxQuery(metadata=metadata), **self._opts)
            found = list(await pages.next_items())
            while pages.has_next:
                found += await pages.next_items()
            return found

    def _template(self, language: str) -> str:
        if language == "node":
            return self.settings.e2b_template_node
        return self.settings.e2b_template_python


def idempotency_key(spec: SessionSpec) -> str:
    """Lowercase hex (as E2B requires), the same for every attempt to open this session."""
    return "cofounder-" + spec.digest[:48]
