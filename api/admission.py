"""Admitting a build under its owner's plan: projects, concurrent builds, builds per day, monthly
spend and models, checked while the owner's row is locked so two requests never share a slot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ServiceError
from cofounder.db import Build, LedgerEntry, Project, UserAccount, insert_for
from cofounder.db.models import utcnow
from cofounder.payloads import ENDED, LOCAL_OWNER, BuildStatus
from cofounder.plans import PlanLimits
from cofounder.settings import Role, Settings

ROLES: tuple[Role, ...] = ("architect", "coder", "debugger", "reviewer")
# Statuses that hold a concurrent-build slot: everything but the end and an idle review session.
IDLE = frozenset({*ENDED, BuildStatus.IN_REVIEW})
BUSY = [status.value for status in BuildStatus if status not in IDLE]


class Refused(ServiceError):
    """A build the plan does not admit; `limit` names the limit it hit."""

    def __init__(self, detail: str, limit: str, tier: str, retry_after: int | None = None) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after)} if retry_after else None)
        self.limit, self.tier = limit, tier

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "limit": self.limit, "tier": self.tier}


class OverQuota(Refused):
    """A limit that frees up with time (a running build ends, a new day starts)."""

    status_code = 429


class PaymentRequired(Refused):
    """A limit only a payment or a bigger plan lifts."""

    status_code = 402


@dataclass(frozen=True)
class Admission:
    """What the plan gives the admitted build."""

    tier: str
    budget_micro_usd: int
    models: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ask:
    """What the request asks for."""

    project: str
    budget_usd: float | None


class Admit:
    """One admission: `lock`, then `check`, in the transaction that then inserts the build;
    the owner's row stays locked until it commits."""

    day: ClassVar[timedelta] = timedelta(days=1)

    def __init__(self, session: AsyncSession, settings: Settings, owner: str) -> None:
        self.session, self.settings, self.owner = session, settings, owner

    async def check(self, user: UserAccount, ask: Ask) -> Admission:
        """The admission of `ask` for the locked `user`, or Refused."""
        tier, limits = user.tier, self.settings.plan(user.tier)
        if user.billing_hold:
            raise PaymentRequired(
                "your builds are on hold: the last payment failed; pay the open invoice"
                " in the billing portal (POST /api/billing/portal) to go on",
                "payment",
                tier,
            )
        await self._projects(ask.project, tier, limits)
        await self._concurrent(tier, limits)
        await self._daily(tier, limits)
        budget = await self._budget(ask.budget_usd, tier, limits)
        return Admission(tier=tier, budget_micro_usd=budget, models=self._models(limits))

    async def account(self, *, lock: bool = False) -> UserAccount:
        """The owner's row, locked when `lock` or when their plan has a limit to count: a plan
        without one admits at the cost of one read."""
        if not lock:
            user = await self.session.get(UserAccount, self.owner)
            if user is not None and not self.settings.plan(user.tier).counted:
                return user
        return await self.lock()

    async def lock(self) -> UserAccount:
        """The owner's row, made if new, and written so that it stays locked (a row lock on
        PostgreSQL, the database's write lock on SQLite) until this transaction ends."""
        now = utcnow()
        tier = starting_tier(self.settings, self.owner)
        row = {"id": self.owner, "created_at": now, "last_seen_at": now, "tier": tier}
        insert = insert_for(self.session)(UserAccount).values(**row)
        await self.session.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
        touch = update(UserAccount).where(UserAccount.id == self.owner).values(admitted_at=now)
        await self.session.execute(touch)
        user = await self.session.get(UserAccount, self.owner, populate_existing=True)
        assert user is not None
        return user

    async def _projects(self, slug: str, tier: str, limits: PlanLimits) -> None:
        if limits.projects is None:
            return
        owned = select(Project.slug).where(Project.owner == self.owner)
        slugs = set((await self.session.scalars(owned)).all())
        if slug not in slugs and len(slugs) >= limits.projects:
            raise PaymentRequired(
                f"the {tier} plan allows {limits.projects} project(s) and you have"
                f" {len(slugs)}; build in one of them or upgrade your plan",
                "projects",
                tier,
            )

    async def _concurrent(self, tier: str, limits: PlanLimits) -> None:
        if limits.concurrent_builds is None:
            return
        running = await self._count(Build.status.in_(BUSY))
        if running >= limits.concurrent_builds:
            raise OverQuota(
                f"the {tier} plan runs {limits.concurrent_builds} build(s) at once and"
                f" {running} are running; wait for one to finish or upgrade your plan",
                "concurrent_builds",
                tier,
                retry_after=60,
            )

    async def _daily(self, tier: str, limits: PlanLimits) -> None:
        if limits.builds_per_day is None:
            return
        now = utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        started = await self._count(Build.created_at >= midnight)
        if started >= limits.builds_per_day:
            wait = int((midnight + self.day - now).total_seconds()) + 1
            raise OverQuota(
                f"the {tier} plan starts {limits.builds_per_day} build(s) a day and you"
                " have started them all today; more at 00:00 UTC, or upgrade your plan",
                "builds_per_day",
                tier,
                retry_after=wait,
            )

    async def _budget(self, asked: float | None, tier: str, limits: PlanLimits) -> int:
        """The build's budget: what it asked for, else the plan's, within the month's spend
        left once running builds' unspent budgets are set aside."""
        budget = round((asked or limits.build_budget_usd) * 1e6)
        if limits.monthly_spend_usd is None:
            return budget
        left = round(limits.monthly_spend_usd * 1e6) - await self.committed()
        if asked is None and 0 < left < budget:
            return left  # the default shrinks to what is left; an explicit ask is kept or refused
        if budget > left:
            raise _over_month(tier, limits, left, "ask for a smaller budget, wait for next month")
        return budget

    async def extension(self, add_micro_usd: int) -> None:
        """Refuse raising a running build's budget past the month's spend (PaymentRequired)."""
        user = await self.lock()
        limits = self.settings.plan(user.tier)
        if limits.monthly_spend_usd is None:
            return
        left = round(limits.monthly_spend_usd * 1e6) - await self.committed()
        if add_micro_usd > left:
            raise _over_month(user.tier, limits, left, "add less")

    async def committed(self) -> int:
        """This month's spend so far plus what running builds may still spend (micro-USD)."""
        start = month_start(utcnow())
        spent = (
            select(func.coalesce(func.sum(LedgerEntry.cost_micro_usd), 0))
            .join(Build, Build.id == LedgerEntry.build_id)
            .where(Build.owner == self.owner, LedgerEntry.created_at >= start)
        )
        unspent = func.coalesce(Build.budget_micro_usd, 0) - Build.cost_micro_usd
        reserved = select(func.coalesce(func.sum(case((unspent > 0, unspent), else_=0)), 0)).where(
            Build.owner == self.owner, Build.status.in_(BUSY)
        )
        return int(await self.session.scalar(spent) or 0) + int(
            await self.session.scalar(reserved) or 0
        )

    def _models(self, limits: PlanLimits) -> dict[str, str]:
        """Roles whose configured model the plan does not allow, with the one they use."""
        if not limits.models:
            return {}
        chosen: dict[str, str] = {}
        for role in ROLES:
            if not limits.allows(self.settings.model_for(role)):
                chosen[role] = limits.models[0]
        return chosen

    async def _count(self, *where: Any) -> int:
        query = select(func.count()).select_from(Build).where(Build.owner == self.owner, *where)
        return int(await self.session.scalar(query) or 0)


def _over_month(tier: str, limits: PlanLimits, left: int, advice: str) -> PaymentRequired:
    return PaymentRequired(
        f"the {tier} plan spends at most ${limits.monthly_spend_usd:.2f} a month and"
        f" ${max(left, 0) / 1e6:.2f} is left (running builds' budgets included);"
        f" {advice}, or upgrade your plan",
        "monthly_spend",
        tier,
    )


def starting_tier(settings: Settings, owner: str) -> str:
    """The tier an owner's row is made with: the local user's in dev mode, else new users'."""
    return settings.local_tier if owner == LOCAL_OWNER else settings.default_tier


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s month, in UTC."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after `start` (a month's first instant)."""
    return (start + timedelta(days=32)).replace(day=1)
