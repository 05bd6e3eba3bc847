"""Admin: every user's plan and usage, and a plan set by hand (self-hosted stacks without
Stripe, or a courtesy upgrade). Callers without the admin role get 404, as for any id not
theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import func, select

from api import billing
from api.admission import month_start
from api.deps import CurrentUser, SessionDep, SettingsDep, User
from api.errors import Conflict, NotFound
from api.schemas.billing import PlanChange, UsageOut, UserList, UserOut
from api.schemas.errors import ErrorOut
from cofounder.db import Build, UserAccount
from cofounder.db.models import utcnow

UserId = Annotated[str, Path(min_length=1, max_length=64)]


def require_admin(user: CurrentUser) -> User:
    if not user.admin:
        raise NotFound("Not Found")
    return user


Admin = Annotated[User, Depends(require_admin)]
router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses={404: {"model": ErrorOut, "description": "Not an admin, or no such user."}},
)


@router.get("/users")
async def list_users(session: SessionDep, settings: SettingsDep, _: Admin) -> UserList:
    """Every user, newest first, with their plan and this month's builds and cost."""
    start = month_start(utcnow())
    builds = (
        select(
            Build.owner,
            func.count(Build.id),
            func.coalesce(func.sum(Build.cost_micro_usd), 0),
        )
        .where(Build.created_at >= start)
        .group_by(Build.owner)
    )
    counts = {owner: (n, cost) for owner, n, cost in (await session.execute(builds)).all()}
    users = await session.scalars(select(UserAccount).order_by(UserAccount.created_at.desc()))
    return UserList(
        users=[
            UserOut(
                id=user.id,
                created_at=user.created_at,
                plan=billing.plan_of(settings, user),
                builds_this_month=counts.get(user.id, (0, 0))[0],
                cost_this_month_micro_usd=counts.get(user.id, (0, 0))[1],
            )
            for user in users
        ]
    )


@router.get("/users/{user_id}/usage")
async def user_usage(
    user_id: UserId, session: SessionDep, settings: SettingsDep, _: Admin
) -> UsageOut:
    """A user's usage as they see it on GET /api/billing/usage."""
    if await session.get(UserAccount, user_id) is None:
        raise NotFound(f"no user {user_id}")
    return await billing.usage(session, settings, user_id)


@router.put(
    "/users/{user_id}/plan",
    responses={
        400: {"model": ErrorOut, "description": "The body is not UTF-8 text."},
        409: {"model": ErrorOut, "description": "No such tier is configured here."},
    },
)
async def set_plan(
    user_id: UserId, body: PlanChange, session: SessionDep, settings: SettingsDep, _: Admin
) -> UserOut:
    """Put a user on a tier by hand; Stripe's next subscription change overrides it."""
    user = await session.get(UserAccount, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if body.tier not in settings.plans:  # tiers are configured, not a fixed enum
        raise Conflict(f"no tier {body.tier!r}; tiers: {', '.join(sorted(settings.plans))}")
    user.tier = body.tier
    await session.commit()
    return UserOut(id=user.id, created_at=user.created_at, plan=billing.plan_of(settings, user))
