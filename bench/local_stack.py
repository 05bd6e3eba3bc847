"""A bench's own stack: a Temporal dev server with the app's search attributes, and settings
pointing at the offline model, a data dir and a task queue of the bench's own."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cofounder.db.migrate import upgrade
from cofounder.settings import Settings
from cofounder.temporal import SEARCH_ATTRIBUTE_KEYS, temporal_binary


@asynccontextmanager
async def local_temporal(http_port: int | None = None) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server with the app's search attributes, its banner kept off our stdout; with
    `http_port`, it also serves Temporal's HTTP API there."""
    sys.stdout.flush()
    saved = os.dup(1)
    # The server inherits fd 1 when spawned; pointing it at stderr keeps stdout the report.
    os.dup2(2, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_binary()),
            search_attributes=SEARCH_ATTRIBUTE_KEYS,
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
            dev_server_extra_args=["--http-port", str(http_port)] if http_port else [],
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    try:
        yield env
    finally:
        await env.shutdown()


async def bench_settings(data_dir: Path, model_url: str | None = None) -> Settings:
    """Settings for a bench's stack (no `.env` read, the offline model at `model_url`), with
    its database migrated."""
    settings = Settings(
        data_dir=data_dir,
        anthropic_api_key=None,
        anthropic_base_url=model_url,
        task_queue=f"bench-{uuid.uuid4().hex[:8]}",
        # The benches send hundreds of requests a minute as one user; they measure the API's
        # own cost, not the rate limiter's refusals.
        rate_limit_per_minute=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    # Alembic's env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    return settings
