"""The metering workflow and its Schedule on a real Temporal dev server, with the worker as
worker.py wires it when Stripe bills the deployment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from cofounder.db.models import utcnow
from cofounder.metering_schedule import ensure_metering_schedule, metering_schedule_id
from cofounder.payloads.billing import MeteringInput, MeteringResult
from cofounder.settings import Settings
from tests.doubles.stripe import StripeDouble
from tests.helpers import activity_summaries
from tests.metering_rows import add_rows, add_user
from tests.stripe_setup import stripe_settings
from worker import running_worker
from workflows.metering import MeteringWorkflow

# `stripe_double` and `stripe_billing` (until conftest.py lists it with the other plugins)

CUSTOMER = "cus_alice"


@pytest_asyncio.fixture
async def billed(
    env: WorkflowEnvironment,
    settings: Settings,
    stripe_double: StripeDouble,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Settings]:
    """Settings billing through the double, with the worker running on them."""
    billing = stripe_settings(settings, stripe_double)
    async with running_worker(env.client, billing):
        yield billing


async def test_a_run_sends_every_due_row_in_batches(
    env: WorkflowEnvironment,
    billed: Settings,
    stripe_double: StripeDouble,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_user(sessions, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(sessions, "alice", 5)
    handle = await env.client.start_workflow(
        MeteringWorkflow.run,
        MeteringInput(batch_rows=2),
        id=f"metering-test-{billed.task_queue}",
        task_queue=billed.task_queue,
    )
    assert await handle.result() == MeteringResult(batches=3, accepted=5)
    assert list(stripe_double.state.meter_events) == keys
    history = await handle.fetch_history()
    summaries = activity_summaries(history)
    assert summaries == [f"send usage to Stripe (batch {n})" for n in (1, 2, 3)]
    replayer = Replayer(workflows=[MeteringWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)  # deterministic, in the sandbox


async def test_the_schedule_is_made_once_and_runs_the_workflow(
    env: WorkflowEnvironment,
    billed: Settings,
    stripe_double: StripeDouble,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = env.client
    await add_user(sessions, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(sessions, "alice", 3)
    await ensure_metering_schedule(client, billed)
    await ensure_metering_schedule(client, billed)  # every worker start: no second schedule
    handle = client.get_schedule_handle(metering_schedule_id(billed))
    try:
        schedule = (await handle.describe()).schedule
        assert [i.every for i in schedule.spec.intervals] == [timedelta(seconds=60)]
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("MeteringWorkflow", billed.task_queue)

        await handle.trigger()
        assert (await _first_run(client, handle.id)).accepted == 3
        assert set(stripe_double.state.meter_events) == set(keys)

        faster = billed.model_copy(update={"meter_every_seconds": 5})
        await ensure_metering_schedule(client, faster)
        schedule = (await handle.describe()).schedule
        assert [i.every for i in schedule.spec.intervals] == [timedelta(seconds=5)]
    finally:
        await handle.delete()


async def _first_run(client: Client, schedule_id: str) -> MeteringResult:
    """The result of the schedule's first workflow run."""
    handle = client.get_schedule_handle(schedule_id)
    for _ in range(100):
        actions = (await handle.describe()).info.recent_actions
        if actions:
            started = actions[0].action
            run = client.get_workflow_handle_for(MeteringWorkflow.run, started.workflow_id)  # type: ignore[attr-defined]
            return await run.result()
        await asyncio.sleep(0.1)
    raise AssertionError("the schedule started no run")
