"""Billing: a subscription checkout, the customer portal, this period's usage, and plans."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.fields import UtcDatetime
from cofounder.plans import PlanLimits

PaidTier = Literal["bootstrapper", "partner", "cto"]


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: PaidTier
    period: Literal["monthly", "annual"] = "monthly"


class RedirectOut(BaseModel):
    """Where to send the founder's browser (Stripe Checkout or the customer portal)."""

    url: str


class PlanOut(BaseModel):
    tier: str
    limits: PlanLimits
    subscription_status: str | None = None
    billing_period: str | None = None
    # A failed payment holds every build until it is paid.
    on_hold: bool = False


class ProjectUsage(BaseModel):
    project: str
    builds: int = 0  # started this period
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro_usd: int = 0


class PendingUsage(BaseModel):
    """Ledger rows not yet accepted by Stripe; they are retried until they are."""

    rows: int = 0
    cost_micro_usd: int = 0


class UsageOut(BaseModel):
    period_start: UtcDatetime
    period_end: UtcDatetime
    plan: PlanOut
    projects: list[ProjectUsage] = Field(default_factory=list)
    total: ProjectUsage
    pending: PendingUsage


class UserOut(BaseModel):
    """A user as admins see them."""

    id: str
    created_at: UtcDatetime
    plan: PlanOut
    builds_this_month: int = 0
    cost_this_month_micro_usd: int = 0


class UserList(BaseModel):
    users: list[UserOut]


class PlanChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=32)
