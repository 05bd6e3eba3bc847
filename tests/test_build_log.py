"""The build log behind the live event stream, on SQLite and PostgreSQL: written once per
origin, phases from before the log copied in by its migration, and a build's events visible
in the order of their ids even when two writers race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder import build_log
from cofounder.db import BuildLogEntry, make_engine, make_sessionmaker
from cofounder.db.migrate import alembic_config
from tests.helpers import insert_build

Sessions = async_sessionmaker[AsyncSession]


def event(build_id: str, key: str) -> dict[str, object]:
    return build_log.entry(build_id, "output", key, {"command_id": "c", "text": key})


async def logged(db: Sessions, build_id: str) -> list[str]:
    query = select(BuildLogEntry.key).where(BuildLogEntry.build_id == build_id)
    async with db() as session:
        return list((await session.scalars(query.order_by(BuildLogEntry.id))).all())


async def test_an_event_is_written_once_per_key(db: Sessions) -> None:
    build_id = await insert_build(db)
    await build_log.append(db, event(build_id, "a"), event(build_id, "b"))
    await build_log.append(db, event(build_id, "b"), event(build_id, "c"))  # "b" is a retry
    assert await logged(db, build_id) == ["a", "b", "c"]


async def test_a_builds_writers_commit_in_the_order_of_their_ids(db: Sessions) -> None:
    """A stream sends a build's events past the last id it sent: an id that became visible
    before a lower one would be skipped for good."""
    build_id = await insert_build(db)
    async with db() as first:
        await build_log.add(first, event(build_id, "first"))  # holds its id, not committed
        second = asyncio.create_task(build_log.append(db, event(build_id, "second")))
        await asyncio.sleep(0.5)
        # PostgreSQL: the second writer waits on the build's row; SQLite: on the write lock.
        seen_meanwhile = await logged(db, build_id)
        await first.commit()
    await second
    assert seen_meanwhile == []
    assert await logged(db, build_id) == ["first", "second"]


async def test_the_migration_copies_recorded_phases_into_the_log(db_url: str) -> None:
    config = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, config, "0012")
    engine = make_engine(db_url)
    now = {"t": datetime(2026, 11, 1, 12, 0, tzinfo=UTC)}
    async with engine.begin() as conn:
        for statement in OLD_ROWS:
            await conn.execute(text(statement), now)
    await asyncio.to_thread(command.upgrade, config, "head")
    async with make_sessionmaker(engine)() as session:
        rows = (await session.scalars(select(BuildLogEntry).order_by(BuildLogEntry.id))).all()
    await engine.dispose()
    assert [(row.kind, row.key) for row in rows] == [
        ("phase", "phase:r1:1"),
        ("phase", "phase:r1:2"),
    ]
    assert rows[1].data == {
        "seq": 2,
        "run_id": "r1",
        "status": "failed",
        "attempt": 3,
        "error": "tests still failing",
        "cost_usd": 0.0125,
        "at": "2026-11-01T12:00:00Z",
    }


OLD_ROWS = [
    "INSERT INTO projects (id, owner, slug, created_at) VALUES (1, 'o', 'p', :t)",
    "INSERT INTO builds (id, project_id, owner, goal, status, require_approval, workflow_id,"
    " attempts, input_tokens, output_tokens, cost_micro_usd, created_at, updated_at)"
    " VALUES ('b1', 1, 'o', 'g', 'failed', false, 'build-b1', 0, 0, 0, 0, :t, :t)",
    "INSERT INTO build_events (build_id, run_id, seq, status, attempt, cost_micro_usd, at)"
    " VALUES ('b1', 'r1', 1, 'planning', 0, 0, :t)",
    "INSERT INTO build_events (build_id, run_id, seq, status, attempt, error, cost_micro_usd, at)"
    " VALUES ('b1', 'r1', 2, 'failed', 3, 'tests still failing', 12500, :t)",
]
