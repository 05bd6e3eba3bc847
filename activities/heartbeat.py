"""Heartbeats for every activity, so a lost worker is noticed in seconds, not at a timeout.

Every step's heartbeat timeout is short (workflows/steps.py); the interceptor below beats for
each activity while it runs, so no activity can forget to, and a cancellation reaches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

INTERVAL_SECONDS = 1.0


@asynccontextmanager
async def heartbeating(interval: float = INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Heartbeat every `interval` seconds while the body runs (no-op outside an activity)."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class HeartbeatInterceptor(Interceptor):
    """Worker interceptor: every (async) activity heartbeats while it runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        async with heartbeating():
            return await super().execute_activity(input)
