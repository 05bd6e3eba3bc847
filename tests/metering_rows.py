"""Users and ledger rows written straight into the app database, for the metering tests."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import Build, LedgerEntry, Project, UserAccount
from cofounder.db.models import utcnow

Sessions = async_sessionmaker[AsyncSession]


async def add_user(
    sessions: Sessions,
    owner: str,
    customer: str | None = None,
    metered_since: datetime | None = None,
) -> None:
    async with sessions() as session:
        session.add(UserAccount(id=owner, stripe_customer_id=customer, metered_since=metered_since))
        await session.commit()


async def add_rows(
    sessions: Sessions,
    owner: str,
    count: int,
    start: datetime | None = None,
    cost: int = 1000,
) -> list[str]:
    """`count` ledger rows of a new build of the owner's, one a second from `start` (default:
    a minute ago), costing cost, cost + 1, ...; their idempotency keys, oldest first."""
    start = start or utcnow() - timedelta(minutes=1)
    build_id = uuid.uuid4().hex[:16]
    keys = [hashlib.sha256(uuid.uuid4().bytes).hexdigest() for _ in range(count)]
    async with sessions() as session:
        project = await session.scalar(select(Project).where(Project.owner == owner))
        if project is None:
            project = Project(owner=owner, slug="demo")
            session.add(project)
            await session.flush()
        session.add(
            Build(
                id=build_id,
                project_id=project.id,
                owner=owner,
                goal="slugs",
                status="coding",
                workflow_id=f"build-{build_id}",
            )
        )
        await session.flush()
        for number, key in enumerate(keys):
            session.add(
                LedgerEntry(
                    build_id=build_id,
                    role="coder",
                    model="claude-sonnet-4-6",
                    cost_micro_usd=cost + number,
                    idempotency_key=key,
                    created_at=start + timedelta(seconds=number),
                )
            )
        await session.commit()
    return keys


async def ledger(sessions: Sessions, keys: list[str]) -> list[LedgerEntry]:
    """The rows of `keys`, in that order."""
    async with sessions() as session:
        found = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.idempotency_key.in_(keys))
        )
        by_key = {row.idempotency_key: row for row in found}
    return [by_key[key] for key in keys]
