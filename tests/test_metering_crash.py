"""A worker killed while Stripe takes its meter events: Stripe accepted a row the worker never
heard of. The Schedule's run goes on on a new worker, which sends that row again (Stripe refuses
the repeated identifier, and the row is marked) and the rest; Stripe holds one event per row."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import LedgerEntry
from cofounder.db.models import utcnow
from tests.doubles.stripe import StripeDouble
from tests.metering_rows import add_rows, add_user, ledger
from tests.processes import Processes
from tests.stripe_setup import stripe_env

# `stripe_double` and `stripe_billing` (until conftest.py lists it with the other plugins)

CUSTOMER = "cus_alice"
ROWS = 30
DEADLINE = 60.0


async def test_a_worker_killed_mid_batch_sends_each_row_once(
    processes: Processes,
    sessions: async_sessionmaker[AsyncSession],
    stripe_double: StripeDouble,
) -> None:
    await add_user(sessions, "alice", CUSTOMER, metered_since=utcnow() - timedelta(hours=1))
    keys = await add_rows(sessions, "alice", ROWS)
    # Each event takes effect at once but is answered 0.1 s later: a kill then loses the answer.
    stripe_double.delay_answers("/v1/billing/meter_events", 0.1)
    env = stripe_env(stripe_double, meter_every_seconds=1)
    processes.temporal()
    first = processes.worker(env=env)

    events = stripe_double.state.meter_events
    await _until(lambda: len(events) >= ROWS // 3, "the first worker sent nothing")
    os.killpg(first.pid, signal.SIGKILL)  # Stripe took this row; the worker never heard so
    first.wait()
    unheard = list(events)[-1]
    processes.worker(env=env)
    await _until_none_due(sessions)

    assert list(events) == keys  # one event per row, oldest first
    assert stripe_double.meter_totals() == {CUSTOMER: sum(1000 + n for n in range(ROWS))}
    assert stripe_double.counts.meter_attempts[unheard] == 2  # sent again, refused as a repeat
    assert sum(stripe_double.counts.meter_attempts.values()) == ROWS + 1
    rows = await ledger(sessions, keys)
    assert all(row.metered_at is not None and row.meter_error is None for row in rows)


async def _until(ready, why: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not ready():
        assert asyncio.get_running_loop().time() < deadline, why
        await asyncio.sleep(0.01)


async def _until_none_due(sessions: async_sessionmaker[AsyncSession]) -> None:
    query = select(func.count()).where(LedgerEntry.metered_at.is_(None))
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        async with sessions() as session:
            if await session.scalar(query) == 0:
                return
        assert asyncio.get_running_loop().time() < deadline, "rows are still due"
        await asyncio.sleep(0.2)
