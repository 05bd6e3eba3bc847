"""Plan tiers and their limits; prices live in Stripe, named by settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# The tiers a founder can buy, cheapest first; "free" is everyone's before they pay.
PAID_TIERS = ("bootstrapper", "partner", "cto")
Period = Literal["monthly", "annual"]
PERIODS: tuple[Period, ...] = ("monthly", "annual")


class PlanLimits(BaseModel):
    """What one tier allows; None: no limit."""

    projects: int | None = Field(default=None, ge=0)
    concurrent_builds: int | None = Field(default=None, ge=0)
    builds_per_day: int | None = Field(default=None, ge=0)
    monthly_spend_usd: float | None = Field(default=None, ge=0)
    # A build's model budget when its request names none.
    build_budget_usd: float = Field(default=5.0, gt=0)
    # Models its builds may call; None: any priced model. A role whose configured model is not
    # allowed uses the first allowed one.
    models: list[str] | None = None

    @property
    def counted(self) -> bool:
        """True when admitting a build means counting something (so the owner is locked)."""
        limits = (self.projects, self.concurrent_builds, self.builds_per_day)
        return any(limit is not None for limit in limits) or self.monthly_spend_usd is not None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


SONNET, HAIKU, OPUS = "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"

DEFAULT_PLANS: dict[str, PlanLimits] = {
    "free": PlanLimits(
        projects=1,
        concurrent_builds=1,
        builds_per_day=3,
        monthly_spend_usd=5,
        build_budget_usd=1,
        models=[SONNET, HAIKU],
    ),
    "bootstrapper": PlanLimits(
        projects=3,
        concurrent_builds=2,
        builds_per_day=20,
        monthly_spend_usd=50,
        build_budget_usd=5,
        models=[SONNET, HAIKU],
    ),
    "partner": PlanLimits(
        projects=10,
        concurrent_builds=5,
        builds_per_day=100,
        monthly_spend_usd=300,
        build_budget_usd=10,
    ),
    "cto": PlanLimits(
        projects=None,
        concurrent_builds=20,
        builds_per_day=500,
        monthly_spend_usd=2000,
        build_budget_usd=25,
    ),
    # Not sold: for a self-hosted stack's own users (the dev-mode local user is on it).
    "unlimited": PlanLimits(build_budget_usd=5),
}
