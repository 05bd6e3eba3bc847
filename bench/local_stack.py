"""A Temporal dev server for benchmarks, with the app's search attributes."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cofounder.temporal import SEARCH_ATTRIBUTE_KEYS, temporal_binary


@asynccontextmanager
async def local_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server with the app's search attributes, its banner kept off our stdout."""
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
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    try:
        yield env
    finally:
        await env.shutdown()
