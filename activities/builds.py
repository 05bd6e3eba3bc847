"""Bookkeeping activities: the build row follows the workflow, and the bill is settled."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import CofounderError, activity_boundary
from activities.ledger import build_usage
from cofounder import build_log, metrics
from cofounder.db import Build, BuildEvent, insert_for
from cofounder.db.models import as_utc, utcnow
from cofounder.payloads import CostSummary, RecordedEvent, StatusUpdate

# How long a phase waits for its build's row before the attempt fails (and Temporal retries it).
ROW_WAIT = timedelta(seconds=2)


class BuildRowMissing(CofounderError):
    """The build's row is not (yet) in the database."""


class BuildRecordActivities:
    """Writes the build's status, progress and totals to the app database (idempotently)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn
    @activity_boundary
    async def record_status(self, status: StatusUpdate) -> RecordedEvent:
        """Append the event (once per run and seq) and move the build row, unless a later
        phase of a newer run is already there."""
        at = status.at or utcnow()
        values: dict[str, object] = {
            "status": status.status.value,
            "attempts": status.attempts,
            "error": status.error,
            "run_id": status.run_id or None,
            "status_at": at,
            "updated_at": utcnow(),
            "finished_at": utcnow() if status.status.terminal else None,
            "view": status.view.model_dump_json() if status.view is not None else None,
        }
        event = {
            "build_id": status.build_id,
            "run_id": status.run_id,
            "parent_run_id": status.parent_run_id,
            "seq": status.seq,
            "status": status.status.value,
            "attempt": status.attempts,
            "error": status.error,
            "cost_micro_usd": status.cost_micro_usd,
            "at": at,
        }
        try:
            await self._record(status, values, event, at)
        except BuildRowMissing:
            # The API commits a build's row right after starting its workflow, so the first
            # phase can come first: wait for the row here rather than fail the attempt.
            await self._row_committed(status.build_id)
            await self._record(status, values, event, at)
        return RecordedEvent(run_id=status.run_id, seq=status.seq)

    async def _record(
        self, status: StatusUpdate, values: dict[str, object], event: dict[str, Any], at: datetime
    ) -> None:
        newer_or_same = or_(Build.status_at.is_(None), Build.status_at <= at)
        async with self.sessions() as session:
            before = await _phase_before(session, status)
            await self._update(session, status.build_id, values, newer_or_same)
            # A retried write finds its event already there (unique build, run, seq).
            insert = insert_for(session)(BuildEvent).values(event)
            added = await session.execute(
                insert.on_conflict_do_nothing(index_elements=["build_id", "run_id", "seq"])
            )
            await build_log.add(session, _phase_entry(status, at))
            await session.commit()
        if added.rowcount:  # type: ignore[attr-defined]  # measured once, not on a retry
            _measure_phase(before, status, at)

    async def _row_committed(self, build_id: str) -> None:
        """Until the build's row is there, for at most ROW_WAIT (reads only: the API's commit
        is what is waited for, so no write lock is held meanwhile)."""
        deadline = time.monotonic() + ROW_WAIT.total_seconds()
        while time.monotonic() < deadline:
            async with self.sessions() as session:
                if await session.get(Build, build_id) is not None:
                    return
            await asyncio.sleep(0.05)

    @activity.defn
    @activity_boundary
    async def record_cost(self, build_id: str) -> CostSummary:
        usage = await build_usage(self.sessions, build_id)
        values: dict[str, object] = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_micro_usd": usage.cost_micro_usd,
        }
        async with self.sessions() as session:
            await self._update(session, build_id, values)
            await session.commit()
        return CostSummary(build_id=build_id, usage=usage)

    @staticmethod
    async def _update(
        session: AsyncSession, build_id: str, values: dict[str, object], *where: Any
    ) -> None:
        statement = update(Build).where(Build.id == build_id, *where).values(values)
        if (await session.execute(statement)).rowcount:  # type: ignore[attr-defined]
            return
        if where and await session.get(Build, build_id) is not None:
            return  # the row exists and already shows a later phase
        raise BuildRowMissing(f"build {build_id} is not in the database")


def _phase_entry(status: StatusUpdate, at: datetime) -> dict[str, Any]:
    return build_log.phase(
        status.build_id,
        run_id=status.run_id,
        seq=status.seq,
        status=status.status.value,
        attempt=status.attempts,
        error=status.error,
        cost_micro_usd=status.cost_micro_usd,
        at=at,
    )


async def _phase_before(
    session: AsyncSession, status: StatusUpdate
) -> tuple[str | None, datetime | None, bool]:
    """The build's status and since when (its creation, for the first phase) before this
    event, and whether no earlier event of the build had this event's status."""
    query = select(Build.status, Build.status_at, Build.created_at)
    row = (await session.execute(query.where(Build.id == status.build_id))).one_or_none()
    seen: int | None = 0
    if status.status in metrics.OUTCOMES:  # only an outcome's first time is counted
        seen = await session.scalar(
            select(func.count())
            .select_from(BuildEvent)
            .where(BuildEvent.build_id == status.build_id, BuildEvent.status == status.status.value)
        )
    if row is None:
        return None, None, not seen
    return row.status, as_utc(row.status_at or row.created_at), not seen


def _measure_phase(
    before: tuple[str | None, datetime | None, bool], status: StatusUpdate, at: datetime
) -> None:
    left, since, first = before
    if since is not None and since > as_utc(at):
        return  # a later phase of a newer run was already there: this event moved nothing
    metrics.phase_moved(left, since, status.status, as_utc(at), first)
