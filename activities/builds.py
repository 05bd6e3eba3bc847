"""Bookkeeping activities: the build row follows the workflow, and the bill is settled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import CofounderError, activity_boundary
from activities.ledger import build_usage
from cofounder.db import Build, BuildEvent, insert_for
from cofounder.db.models import utcnow
from cofounder.payloads import CostSummary, RecordedEvent, StatusUpdate


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
        newer_or_same = or_(Build.status_at.is_(None), Build.status_at <= at)
        async with self.sessions() as session:
            await self._update(session, status.build_id, values, newer_or_same)
            # A retried write finds its event already there (unique build, run, seq).
            insert = insert_for(session)(BuildEvent).values(event)
            await session.execute(
                insert.on_conflict_do_nothing(index_elements=["build_id", "run_id", "seq"])
            )
            await session.commit()
        return RecordedEvent(run_id=status.run_id, seq=status.seq)

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
        # The API commits the row right after starting the workflow; retrying covers the gap.
        raise CofounderError(f"build {build_id} is not in the database")
