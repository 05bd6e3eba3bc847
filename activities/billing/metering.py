"""Usage sent to Stripe: each ledger row of a subscribed user becomes one billing meter event.

A row is due when it has not been sent (`metered_at` is None), its build's owner has a Stripe
customer, and it was made at or after the owner's `metered_since`. Its meter event's identifier
is the row's idempotency key, so Stripe takes it once however often it is sent: a worker that
dies after Stripe accepted a row but before marking it only makes the next attempt send it
again, and Stripe's refusal of the repeat marks it then.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.billing.errors import BillingNotAuthorized, BillingRefused
from activities.billing.stripe_api import MeterOutcome, StripeBilling
from activities.errors import activity_boundary
from cofounder.db import Build, LedgerEntry, UserAccount
from cofounder.db.models import as_utc, utcnow
from cofounder.payloads.billing import MeterBatch, MeterReport
from cofounder.settings import Settings

log = structlog.get_logger()

# A refusal kept on the row is cut to this many characters.
METER_ERROR_LIMIT = 1000


@dataclass(frozen=True)
class DueRow:
    id: int
    identifier: str
    value: int
    created_at: datetime
    customer: str


def due_rows() -> Select:
    """Ledger rows that Stripe should bill and has not been sent: oldest first."""
    return (
        select(
            LedgerEntry.id,
            LedgerEntry.idempotency_key,
            LedgerEntry.cost_micro_usd,
            LedgerEntry.created_at,
            UserAccount.stripe_customer_id,
        )
        .join(Build, Build.id == LedgerEntry.build_id)
        .join(UserAccount, UserAccount.id == Build.owner)
        .where(
            LedgerEntry.metered_at.is_(None),
            UserAccount.stripe_customer_id.is_not(None),
            UserAccount.metered_since.is_not(None),
            LedgerEntry.created_at >= UserAccount.metered_since,
        )
    )


async def pending_meter_events(session: AsyncSession, owner: str) -> tuple[int, int]:
    """How many of the owner's billed ledger rows Stripe has not been sent yet, and their cost
    in micro-dollars: usage that will still reach the invoice."""
    count, cost = (await session.execute(_totals(due_rows().where(Build.owner == owner)))).one()
    return int(count), int(cost)


def meter_idempotency_key(identifier: str) -> str:
    """The SDK's idempotency key for sending a row's meter event now: one per row and activity
    attempt (random outside an activity).

    The identifier is what makes the event once: Stripe refuses a second event with it for at
    least a day, as long as it keeps a key. A key reused by a retry would add nothing but harm:
    Stripe keeps a 5xx under its key and replays it for a day, which would pin the row (and,
    sent oldest first, every row after it) to that failure."""
    row = hashlib.sha256(identifier.encode()).hexdigest()[:32]
    if not activity.in_activity():
        return f"meter-{row}-{uuid.uuid4().hex[:16]}"
    info = activity.info()
    sending = f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"
    return f"meter-{row}-{hashlib.sha256(sending.encode()).hexdigest()[:16]}"


class MeterActivities:
    """Sends due ledger rows to Stripe as billing meter events."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stripe: StripeBilling,
        settings: Settings,
    ) -> None:
        self.sessions, self.stripe, self.settings = sessions, stripe, settings

    @activity.defn
    @activity_boundary
    async def send_meter_events(self, batch: MeterBatch) -> MeterReport:
        """Send up to `batch.limit` due rows, oldest first, marking each as Stripe takes it.

        A row Stripe refuses keeps the refusal in `meter_error` and the others go on; Stripe
        being unavailable (or refusing our key) ends the attempt, and Temporal retries it."""
        rows = await self._due(batch)
        outcomes: list[MeterOutcome | None] = []
        for row in rows:
            if activity.in_activity():
                activity.heartbeat(row.id)
            outcomes.append(await self._send(row))
        # Rows refused before wait for the next run's first batch.
        not_refused = due_rows().where(LedgerEntry.meter_error.is_(None))
        async with self.sessions() as session:
            remaining, _ = (await session.execute(_totals(not_refused))).one()
        return MeterReport(
            accepted=outcomes.count("accepted"),
            duplicates=outcomes.count("duplicate"),
            refused=outcomes.count(None),
            remaining=remaining,
        )

    async def _due(self, batch: MeterBatch) -> list[DueRow]:
        query = due_rows()
        if not batch.retry_refused:
            query = query.where(LedgerEntry.meter_error.is_(None))
        query = query.order_by(LedgerEntry.created_at, LedgerEntry.id).limit(batch.limit)
        async with self.sessions() as session:
            return [DueRow(*row) for row in (await session.execute(query)).all()]

    async def _send(self, row: DueRow) -> MeterOutcome | None:
        """Send one row and record what Stripe said; None when it refused the row."""
        try:
            outcome = await self.stripe.send_meter_event(
                self.settings.stripe_meter_event_name,
                row.customer,
                row.value,
                identifier=row.identifier,
                timestamp=int(as_utc(row.created_at).timestamp()),
                idempotency_key=meter_idempotency_key(row.identifier),
            )
        except BillingNotAuthorized:
            raise  # our key, not this row: no row is to blame
        except BillingRefused as err:
            log.warning("meter event refused", ledger_id=row.id, error=str(err))
            await self._mark(row, metered_at=None, meter_error=str(err)[:METER_ERROR_LIMIT])
            return None
        await self._mark(row, metered_at=utcnow(), meter_error=None)
        return outcome

    async def _mark(self, row: DueRow, **values: Any) -> None:
        # One commit per row: a worker dying mid-batch loses at most the row in flight.
        statement = update(LedgerEntry).where(
            LedgerEntry.id == row.id, LedgerEntry.metered_at.is_(None)
        )
        async with self.sessions() as session:
            await session.execute(statement.values(**values))
            await session.commit()


def _totals(query: Select) -> Select:
    """How many rows `query` finds, and their cost."""
    rows = query.subquery()
    return select(func.count(), func.coalesce(func.sum(rows.c.cost_micro_usd), 0))
