"""The app database goes away mid-build (PostgreSQL stopped for seconds, then started): the
build waits for it, completes, and nothing is recorded twice."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.ledger import build_usage
from cofounder.db import Build, BuildEvent, make_engine, make_sessionmaker
from cofounder.db.migrate import upgrade
from cofounder.payloads import BuildStatus
from cofounder.settings import Settings
from tests.conftest import free_port
from tests.helpers import inject_faults, model_stats, side_effects, start_build, wait_for_status
from tests.postgres import LocalPostgres
from worker import running_worker

OUTAGE_SECONDS = 6.0


@pytest.fixture
def postgres() -> Iterator[LocalPostgres]:
    if not LocalPostgres.available():
        pytest.fail("PostgreSQL 15 is not installed (scripts/test installs it)")
    root = Path(tempfile.mkdtemp(prefix="cofounder-outage-"))
    server = LocalPostgres(root, free_port()).init()
    server.start()
    yield server
    server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def pg_sessions(postgres: LocalPostgres) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await asyncio.to_thread(upgrade, postgres.url)
    engine = make_engine(postgres.url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.mark.slow
async def test_build_completes_through_a_database_outage(
    env: WorkflowEnvironment,
    settings: Settings,
    postgres: LocalPostgres,
    pg_sessions: async_sessionmaker[AsyncSession],
    offline_model: str,
) -> None:
    on_postgres = settings.model_copy(update={"database_url": postgres.url})
    inject_faults(offline_model, {"slow_tests": 2, "role": "coder"})  # a test run to outlast
    async with running_worker(env.client, on_postgres):
        handle = await start_build(env.client, on_postgres, pg_sessions)
        await wait_for_status(handle, BuildStatus.TESTING, timeout=60)
        # Down while the tests run: the end of the run, the debug call's ledger row and the
        # next phase changes all meet a dead database and wait for it.
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(postgres.start)
        view = await asyncio.wait_for(handle.result(), 180)

    assert view.status == BuildStatus.SUCCEEDED
    effects = await side_effects(pg_sessions, view.build_id)
    assert effects == {"pull_requests": 1, "ledger_rows": model_stats(offline_model)["served"]}
    async with pg_sessions() as session:
        row = await session.get(Build, view.build_id)
        query = select(BuildEvent).where(BuildEvent.build_id == view.build_id)
        events = (await session.scalars(query)).all()
    assert row is not None and row.status == "succeeded"
    assert row.cost_micro_usd == (await build_usage(pg_sessions, view.build_id)).cost_micro_usd
    assert sorted(e.seq for e in events) == list(range(1, len(events) + 1))
    assert [e.status for e in sorted(events, key=lambda e: e.seq)][-1] == "succeeded"
    # The outage was felt: some step failed against the dead database and was retried.
    history = await handle.fetch_history()
    assert any(
        e.activity_task_started_event_attributes.attempt > 1
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    )
