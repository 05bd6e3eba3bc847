"""Bookkeeping activities: the build row follows the workflow, and the bill is settled."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import CofounderError, to_application_error
from activities.ledger import build_usage
from cofounder.db import Build, BuildEvent, insert_for
from cofounder.db.models import utcnow
from cofounder.payloads import CostSummary, StatusUpdate


class BuildRecordActivities:
    """Writes the build's status, progress and totals to the app database (idempotently)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn
    async def record_status(self, status: StatusUpdate) -> None:
        values: dict[str, object] = {
            "status": status.status.value,
            "attempts": status.attempts,
            "error": status.error,
            "updated_at": utcnow(),
        }
        if status.status.terminal:
            values["finished_at"] = utcnow()
        event = {
            "build_id": status.build_id,
            "seq": status.seq,
            "status": status.status.value,
            "attempt": status.attempts,
            "error": status.error,
            "cost_micro_usd": status.cost_micro_usd,
            "at": status.at or utcnow(),
        }
        async with self.sessions() as session:
            await self._update(session, status.build_id, values)
            # A retried write finds its event already there (unique build_id, seq).
            await session.execute(
                insert_for(session)(BuildEvent).values(event).on_conflict_do_nothing()
            )
            await session.commit()

    @activity.defn
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
    async def _update(session: AsyncSession, build_id: str, values: dict[str, object]) -> None:
        result = await session.execute(update(Build).where(Build.id == build_id).values(values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            # The API commits the row right after starting the workflow; retrying covers the gap.
            raise to_application_error(CofounderError(f"build {build_id} is not in the database"))
