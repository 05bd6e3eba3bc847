"""Every activity heartbeats through the worker's interceptor, so a short heartbeat timeout
catches a dead worker in seconds without failing a live activity that never beats itself."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.heartbeat import HeartbeatInterceptor
from worker import HEARTBEAT_THROTTLE


@activity.defn
async def quiet_work(seconds: float) -> str:
    """Work that never heartbeats by itself."""
    await asyncio.sleep(seconds)
    return "done"


@workflow.defn(sandboxed=False)
class QuietWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            quiet_work,
            seconds,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def run_quiet(env: WorkflowEnvironment, interceptors: list) -> str:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[QuietWorkflow],
        activities=[quiet_work],
        interceptors=interceptors,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    ):
        return await env.client.execute_workflow(
            QuietWorkflow.run, 4.0, id=f"quiet-{uuid.uuid4().hex[:8]}", task_queue=queue
        )


async def test_interceptor_keeps_a_quiet_activity_alive(env: WorkflowEnvironment) -> None:
    assert await run_quiet(env, [HeartbeatInterceptor()]) == "done"


async def test_without_it_the_same_activity_times_out(env: WorkflowEnvironment) -> None:
    with pytest.raises(WorkflowFailureError) as failed:
        await run_quiet(env, [])
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, TimeoutError)
    assert cause.cause.type == TimeoutType.HEARTBEAT
