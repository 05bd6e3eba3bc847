"""Task queues by kind of work: model calls and sandbox work beside the workflows' queue, served
by any subset of worker processes, with the fleet's model-call rate held by the server."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType, RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from cofounder.payloads import BuildStatus
from cofounder.settings import Settings
from tests.helpers import activity_types, start_build
from worker import build_activities, running_worker
from workflows.queues import MODEL_ACTIVITIES, SANDBOX_ACTIVITIES, QueueKind, queue_name


def test_every_routed_name_is_a_real_activity(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A renamed activity would silently fall back to the workflows' queue.
    names = {act.__name__ for act in build_activities(settings, sessions)}
    assert MODEL_ACTIVITIES <= names and SANDBOX_ACTIVITIES <= names


WORKER = RateLimitSource.RATE_LIMIT_SOURCE_WORKER


def started(history: WorkflowHistory) -> set[str]:
    """Names of the activities that a worker picked up."""
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return {
        scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }


async def until_scheduled(handle: WorkflowHandle[Any, Any], name: str, wait: float = 30) -> None:
    deadline = time.monotonic() + wait
    while name not in activity_types(await handle.fetch_history()):
        assert time.monotonic() < deadline, f"{name} never scheduled"
        await asyncio.sleep(0.1)


def serving(settings: Settings, *kinds: QueueKind) -> Settings:
    return settings.model_copy(update={"worker_queues": list(kinds)})


async def test_a_build_runs_on_three_processes_one_queue_each(
    env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with AsyncExitStack() as stack:
        for kind in ("workflows", "models"):
            await stack.enter_async_context(running_worker(env.client, serving(settings, kind)))
        handle = await start_build(env.client, settings, sessions)
        # Without a sandbox worker the build plans, then waits for one to open its sandbox.
        await until_scheduled(handle, "open_sandbox")
        await asyncio.sleep(1)
        assert "open_sandbox" not in started(await handle.fetch_history())
        await stack.enter_async_context(running_worker(env.client, serving(settings, "sandbox")))
        assert (await handle.result()).status == BuildStatus.SUCCEEDED

    history = await handle.fetch_history()
    queues = {
        event.activity_task_scheduled_event_attributes.activity_type.name: (
            event.activity_task_scheduled_event_attributes.task_queue.name
        )
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    base = settings.task_queue
    assert queues["plan"] == queues["model_turn"] == queue_name(base, "models")
    assert queues["run_tests"] == queues["run_tools"] == queue_name(base, "sandbox")
    assert queues["record_status"] == queues["publish"] == base


async def test_the_fleets_model_call_rate_is_the_servers(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    limited = serving(settings, "models").model_copy(update={"model_calls_per_second": 2.5})
    request = DescribeTaskQueueRequest(
        namespace=env.client.namespace,
        task_queue=TaskQueue(name=queue_name(settings.task_queue, "models")),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        report_config=True,
    )
    async with running_worker(env.client, limited):
        deadline = time.monotonic() + 15
        while True:  # the server learns the limit from the worker's polls
            described = await env.client.workflow_service.describe_task_queue(request)
            rate = described.effective_rate_limit
            if rate.rate_limit_source == WORKER or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert rate.rate_limit_source == WORKER
    assert rate.requests_per_second == 2.5
