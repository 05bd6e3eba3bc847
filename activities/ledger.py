"""Usage ledger writes: exactly one row per LLM call, whatever the retries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder import build_log, metrics
from cofounder.db import LedgerEntry, insert_for
from cofounder.payloads import Usage


async def record_call(
    sessions: async_sessionmaker[AsyncSession],
    *,
    idempotency_key: str,
    build_id: str,
    role: str,
    model: str,
    usage: Usage,
    step: int | None = None,
) -> bool:
    """Insert the ledger row for one LLM call, with its `cost` event in the build's log;
    a second insert with the same key does nothing. Whether this one was the first."""
    values = dict(
        idempotency_key=idempotency_key,
        build_id=build_id,
        role=role,
        model=model,
        step=step,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cost_micro_usd=usage.cost_micro_usd,
    )
    async with sessions() as session:
        stmt = insert_for(session)(LedgerEntry).values(**values)
        inserted = await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        first = bool(inserted.rowcount)  # type: ignore[attr-defined]
        if first:
            total = await session.scalar(
                select(func.sum(LedgerEntry.cost_micro_usd)).where(LedgerEntry.build_id == build_id)
            )
            data = {
                "role": role,
                "model": model,
                "step": step,
                "call_usd": usage.cost_micro_usd / 1_000_000,
                "total_usd": int(total or 0) / 1_000_000,  # PostgreSQL sums to a Decimal
            }
            await build_log.add(
                session, build_log.entry(build_id, "cost", f"cost:{idempotency_key}", data)
            )
        await session.commit()
    if first:  # counted with its row: a journaled retry finds the row there and counts nothing
        metrics.model_called(model, role, usage)
    return first


async def build_usage(sessions: async_sessionmaker[AsyncSession], build_id: str) -> Usage:
    """The build's cost: the sum of its ledger rows."""
    cols = [
        LedgerEntry.input_tokens,
        LedgerEntry.output_tokens,
        LedgerEntry.cache_creation_input_tokens,
        LedgerEntry.cache_read_input_tokens,
        LedgerEntry.cost_micro_usd,
    ]
    query = select(func.count(), *[func.coalesce(func.sum(c), 0) for c in cols]).where(
        LedgerEntry.build_id == build_id
    )
    async with sessions() as session:
        row = (await session.execute(query)).one()
    return Usage(
        calls=row[0],
        input_tokens=row[1],
        output_tokens=row[2],
        cache_creation_input_tokens=row[3],
        cache_read_input_tokens=row[4],
        cost_micro_usd=row[5],
    )
