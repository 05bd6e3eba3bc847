"""Fixtures for tests that run builds: a worker on the test's server, and the API in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from cofounder.settings import Settings
from worker import running_worker


@pytest_asyncio.fixture
async def worker(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[list[Worker]]:
    """Every workflow and activity, polling the test's task queues for the test's length."""
    async with running_worker(env.client, settings) as running:
        yield running


@pytest_asyncio.fixture
async def http_app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: WorkflowEnvironment
) -> AsyncIterator[FastAPI]:
    """The API app, started against the test's database and Temporal."""
    served = create_app(settings, client=env.client)
    async with served.router.lifespan_context(served):
        yield served


@pytest_asyncio.fixture
async def http(http_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The API served in-process (ASGI) against the test's database and Temporal."""
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client
