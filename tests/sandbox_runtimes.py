"""Both sandbox runtimes for the tests, and a way to lose a sandbox the way production does."""

from __future__ import annotations

import shutil

from activities.sandbox import SandboxRuntime
from activities.sandbox.local import LocalRuntime

# The E2B double of the session, set by the fixture that starts it (see conftest.py).
DOUBLES: dict[int, object] = {}


async def destroy(runtime: SandboxRuntime, session_id: str) -> None:
    """Lose a sandbox from outside: E2B kills it, a local one loses its worker's disk."""
    if isinstance(runtime, LocalRuntime):
        shutil.rmtree(runtime.root / session_id)
        return
    double = DOUBLES[id(runtime)]
    double.destroy(session_id)  # type: ignore[attr-defined]
