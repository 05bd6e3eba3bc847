"""The database layer on SQLite and PostgreSQL alike: migrations, ledger, records, the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities import builds
from activities.builds import BuildRecordActivities
from activities.ledger import build_usage, record_call
from api.main import create_app
from cofounder.db import Build, BuildEvent, LedgerEntry, Project, make_engine
from cofounder.db.migrate import alembic_config
from cofounder.payloads import BuildStatus, RecordedEvent, StatusUpdate, Usage
from cofounder.settings import Settings
from tests.helpers import count, insert_build

Sessions = async_sessionmaker[AsyncSession]


async def test_migrations_create_every_table(db: Sessions) -> None:
    async with db() as session:
        conn = await session.connection()
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {"projects", "builds", "pull_requests", "usage_ledger", "build_events"} <= tables
    assert "alembic_version" in tables


async def test_ledger_keeps_one_row_per_call_key(db: Sessions) -> None:
    build_id = await insert_build(db)
    usage = Usage(calls=1, input_tokens=100, output_tokens=20, cost_micro_usd=600)
    for key in ("call-a", "call-a", "call-b"):  # the second "call-a" is a retried write
        await record_call(
            db, idempotency_key=key, build_id=build_id, role="coder", model="m", usage=usage
        )
    assert await count(db, LedgerEntry, build_id=build_id) == 2
    total = await build_usage(db, build_id)
    assert (total.calls, total.input_tokens, total.cost_micro_usd) == (2, 200, 1200)
    assert await build_usage(db, "no-such-build") == Usage()


async def test_status_records_are_idempotent(db: Sessions) -> None:
    records = BuildRecordActivities(db)
    build_id = await insert_build(db)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    testing = StatusUpdate(build_id=build_id, status=BuildStatus.TESTING, attempts=1, seq=1, at=at)
    await records.record_status(testing)
    await records.record_status(testing)  # a retry after a lost completion
    failed = StatusUpdate(build_id=build_id, status=BuildStatus.FAILED, error="no", seq=2, at=at)
    await records.record_status(failed)

    async with db() as session:
        build = await session.get(Build, build_id)
        events = (await session.scalars(select(BuildEvent).order_by(BuildEvent.seq))).all()
    assert build is not None and build.status == "failed" and build.error == "no"
    assert build.finished_at is not None
    assert [(e.seq, e.status) for e in events] == [(1, "testing"), (2, "failed")]

    await record_call(
        db,
        idempotency_key="k",
        build_id=build_id,
        role="architect",
        model="m",
        usage=Usage(calls=1, input_tokens=7, output_tokens=3, cost_micro_usd=66),
    )
    summary = await records.record_cost(build_id)
    async with db() as session:
        build = await session.get(Build, build_id)
    assert build is not None and build.cost_micro_usd == summary.usage.cost_micro_usd == 66


async def test_a_first_phase_before_the_apis_commit_waits_for_the_row(
    db: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = BuildRecordActivities(db)
    build_id = "a0b1c2d3e4f5a6b7"
    planning = StatusUpdate(build_id=build_id, status=BuildStatus.PLANNING, seq=1)
    # The API starts the workflow, then commits the row: the first phase may come between.
    recording = asyncio.ensure_future(records.record_status(planning))
    await asyncio.sleep(0.3)
    assert not recording.done()
    await insert_build(db, build_id=build_id)
    assert await recording == RecordedEvent(run_id="", seq=1)  # in one attempt
    async with db() as session:
        build = await session.get(Build, build_id)
    assert build is not None and build.status == "planning"

    # A row that never comes fails the attempt, and Temporal retries it.
    monkeypatch.setattr(builds, "ROW_WAIT", timedelta(milliseconds=200))
    lost = StatusUpdate(build_id="f0e1d2c3b4a59687", status=BuildStatus.PLANNING, seq=1)
    with pytest.raises(ApplicationError, match="is not in the database") as refused:
        await records.record_status(lost)
    assert not refused.value.non_retryable


async def test_runs_keep_their_own_events_and_a_late_old_write_moves_nothing_back(
    db: Sessions,
) -> None:
    records = BuildRecordActivities(db)
    build_id = await insert_build(db)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def update(run: str, seq: int, status: BuildStatus, minute: int, **extra: Any) -> StatusUpdate:
        at = t0.replace(minute=minute)
        return StatusUpdate(build_id=build_id, status=status, seq=seq, at=at, run_id=run, **extra)

    await records.record_status(update("a", 1, BuildStatus.PLANNING, 0))
    await records.record_status(update("a", 2, BuildStatus.FAILED, 1, error="bad key"))
    # An operator resets to after seq 1: the new run's seq 2 is its own, not a duplicate.
    reset = update("b", 2, BuildStatus.CODING, 5, parent_run_id="a")
    assert await records.record_status(reset) == RecordedEvent(run_id="b", seq=2)
    await records.record_status(update("a", 2, BuildStatus.FAILED, 1, error="bad key"))  # late

    async with db() as session:
        build = await session.get(Build, build_id)
        query = select(BuildEvent).order_by(BuildEvent.id)
        events = [
            (e.run_id, e.seq, e.status, e.parent_run_id) for e in await session.scalars(query)
        ]
    assert build is not None
    assert (build.status, build.run_id, build.error, build.finished_at) == (
        "coding",
        "b",
        None,
        None,
    )
    assert events == [
        ("a", 1, "planning", None),
        ("a", 2, "failed", None),
        ("b", 2, "coding", "a"),
    ]


async def test_migration_keys_existing_events_by_run_and_downgrades(db_url: str) -> None:
    config = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, config, "0002")  # events keyed by seq alone
    now = {"t": datetime.now(UTC)}
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        for statement in OLD_ROWS:
            await conn.execute(text(statement), now)
    await asyncio.to_thread(command.upgrade, config, "head")
    async with engine.begin() as conn:
        rows = (await conn.execute(text("SELECT run_id, seq FROM build_events ORDER BY seq"))).all()
        assert [tuple(row) for row in rows] == [("", 1), ("", 2)]
        await conn.execute(text(NEW_RUN_EVENT), now)  # seq 1 again, of another run
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text(OLD_ROWS[-1].replace("2, 'coding'", "1, 'coding'")), now)
    await asyncio.to_thread(command.downgrade, config, "0002")  # the latest event per seq stays
    async with engine.begin() as conn:
        rows = (await conn.execute(text("SELECT seq, status FROM build_events ORDER BY seq"))).all()
        assert [tuple(row) for row in rows] == [(1, "planning"), (2, "coding")]
    await engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "head")


OLD_ROWS = [
    "INSERT INTO projects (id, owner, slug, created_at) VALUES (1, 'o', 'p', :t)",
    "INSERT INTO builds (id, project_id, owner, goal, status, require_approval, workflow_id,"
    " attempts, input_tokens, output_tokens, cost_micro_usd, created_at, updated_at)"
    " VALUES ('b1', 1, 'o', 'g', 'coding', false, 'build-b1', 0, 0, 0, 0, :t, :t)",
    "INSERT INTO build_events (build_id, seq, status, attempt, cost_micro_usd, at)"
    " VALUES ('b1', 1, 'planning', 0, 0, :t)",
    "INSERT INTO build_events (build_id, seq, status, attempt, cost_micro_usd, at)"
    " VALUES ('b1', 2, 'coding', 0, 0, :t)",
]
NEW_RUN_EVENT = (
    "INSERT INTO build_events (build_id, run_id, seq, status, attempt, cost_micro_usd, at)"
    " VALUES ('b1', 'r2', 1, 'planning', 0, 0, :t)"
)


async def test_status_for_an_unknown_build_is_retried_not_lost(db: Sessions) -> None:
    records = BuildRecordActivities(db)
    with pytest.raises(ApplicationError) as raised:
        await records.record_status(StatusUpdate(build_id="missing", status=BuildStatus.CODING))
    assert not raised.value.non_retryable


async def test_api_creates_a_project_once_per_slug(
    db_url: str, db: Sessions, settings: Settings, env: WorkflowEnvironment
) -> None:
    app = create_app(settings.model_copy(update={"database_url": db_url}), client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            for goal in ("first goal", "second goal"):
                body = {"project": "shared", "goal": goal}
                assert (await http.post("/api/builds", json=body)).status_code == 202
            listed = (await http.get("/api/builds", params={"project": "shared"})).json()
    assert [b["goal"] for b in listed["builds"]] == ["second goal", "first goal"]
    assert await count(db, Project, slug="shared") == 1
