"""Billing for the signed-in founder: subscribe through Stripe Checkout, manage it in the
customer portal, and read this period's usage per project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.billing.metering import pending_meter_events
from activities.billing.stripe_api import StripeBilling
from api.admission import Admit, month_start, next_month, starting_tier
from api.errors import Conflict
from api.schemas.billing import (
    CheckoutRequest,
    PendingUsage,
    PlanOut,
    ProjectUsage,
    RedirectOut,
    UsageOut,
)
from cofounder.db import Build, LedgerEntry, Project, UserAccount
from cofounder.db.models import utcnow
from cofounder.settings import Settings


def plan_of(settings: Settings, user: UserAccount) -> PlanOut:
    return PlanOut(
        tier=user.tier,
        limits=settings.plan(user.tier),
        subscription_status=user.subscription_status,
        billing_period=user.billing_period,
        on_hold=user.billing_hold,
    )


async def checkout(
    session: AsyncSession,
    stripe: StripeBilling | None,
    settings: Settings,
    owner: str,
    request: CheckoutRequest,
) -> RedirectOut:
    """A Stripe Checkout page subscribing the founder to `tier`; their customer is made once."""
    stripe = _configured(stripe)
    price = settings.stripe_price(request.tier, request.period)
    if price is None:
        raise Conflict(f"the {request.tier} plan is not sold {request.period} here")
    user = await Admit(session, settings, owner).lock()
    customer = await stripe.ensure_customer(owner, user.stripe_customer_id)
    user.stripe_customer_id = customer
    # Saved before the founder pays, so every later event finds who the customer is.
    await session.commit()
    url = await stripe.checkout(
        customer,
        owner,
        price,
        settings.stripe_price_usage,
        success_url=f"{settings.app_url}/billing?checkout=done",
        cancel_url=f"{settings.app_url}/billing?checkout=cancelled",
    )
    return RedirectOut(url=url)


async def portal(
    session: AsyncSession, stripe: StripeBilling | None, settings: Settings, owner: str
) -> RedirectOut:
    """Stripe's customer portal, where the founder changes plan, card or cancels."""
    stripe = _configured(stripe)
    user = await session.get(UserAccount, owner)
    if user is None or user.stripe_customer_id is None:
        raise Conflict("no subscription yet: start one with POST /api/billing/checkout")
    url = await stripe.portal(user.stripe_customer_id, return_url=f"{settings.app_url}/billing")
    return RedirectOut(url=url)


async def usage(session: AsyncSession, settings: Settings, owner: str) -> UsageOut:
    """This calendar month's (UTC) builds, tokens and cost per project, and what Stripe has
    not yet been sent."""
    start = month_start(utcnow())
    user = await session.get(UserAccount, owner)
    if user is None:
        tier = starting_tier(settings, owner)  # as admission will make them
        user = UserAccount(id=owner, tier=tier, created_at=utcnow(), billing_hold=False)
    by_project = {row.project: row for row in await _ledger_sums(session, owner, start)}
    for slug, count in await _builds_started(session, owner, start):
        by_project.setdefault(slug, ProjectUsage(project=slug)).builds = count
    projects = sorted(by_project.values(), key=lambda row: row.project)
    total = ProjectUsage(project="*")
    for row in projects:
        for name in ("builds", "model_calls", "input_tokens", "output_tokens", "cost_micro_usd"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    rows, cost = await pending_meter_events(session, owner)
    return UsageOut(
        period_start=start,
        period_end=next_month(start),
        plan=plan_of(settings, user),
        projects=projects,
        total=total,
        pending=PendingUsage(rows=rows, cost_micro_usd=cost),
    )


async def _ledger_sums(session: AsyncSession, owner: str, start: datetime) -> list[ProjectUsage]:
    query = (
        select(
            Project.slug,
            func.count(LedgerEntry.id),
            func.coalesce(func.sum(LedgerEntry.input_tokens), 0),
            func.coalesce(func.sum(LedgerEntry.output_tokens), 0),
            func.coalesce(func.sum(LedgerEntry.cost_micro_usd), 0),
        )
        .join(Build, Build.id == LedgerEntry.build_id)
        .join(Project, Project.id == Build.project_id)
        .where(Build.owner == owner, LedgerEntry.created_at >= start)
        .group_by(Project.slug)
    )
    return [
        ProjectUsage(
            project=slug,
            model_calls=calls,
            input_tokens=inputs,
            output_tokens=outputs,
            cost_micro_usd=cost,
        )
        for slug, calls, inputs, outputs, cost in (await session.execute(query)).all()
    ]


async def _builds_started(
    session: AsyncSession, owner: str, start: datetime
) -> list[tuple[str, int]]:
    query = (
        select(Project.slug, func.count(Build.id))
        .join(Project, Project.id == Build.project_id)
        .where(Build.owner == owner, Build.created_at >= start)
        .group_by(Project.slug)
    )
    return [(slug, count) for slug, count in (await session.execute(query)).all()]


def _configured(stripe: StripeBilling | None) -> StripeBilling:
    if stripe is None:
        raise Conflict(
            "billing is not configured here (STRIPE_SECRET_KEY); plans are set by admins"
        )
    return stripe
