"""A build's budget: asking for more, and what is left of it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cofounder.payloads import BuildView


class BudgetRequest(BaseModel):
    """More budget for a build (one awaiting budget goes on if it is now enough)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    add_usd: float = Field(gt=0, le=10_000, examples=[5.0])


class BudgetOut(BaseModel):
    """A live build's budget: its limit, what is left, and per role what was spent."""

    limit_usd: float
    remaining_usd: float
    needed_usd: float | None = Field(
        default=None, description="While awaiting budget: the worst case of the waiting call."
    )
    spent_by_role_usd: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def of(cls, view: BuildView) -> BudgetOut | None:
        """The live budget, from the workflow's view."""
        if view.budget_micro_usd is None:
            return None
        needed = view.budget_needed_micro_usd
        by_role = {role: usage.cost_micro_usd for role, usage in view.cost_by_role.items()}
        budget = cls.recorded(view.budget_micro_usd, view.cost.cost_micro_usd, by_role)
        return budget.model_copy(update={"needed_usd": None if needed is None else needed / 1e6})

    @classmethod
    def recorded(cls, limit: int, spent: int, by_role: dict[str, int]) -> BudgetOut:
        """The budget as the database has it (micro-dollars in)."""
        return cls(
            limit_usd=limit / 1e6,
            remaining_usd=(limit - spent) / 1e6,
            spent_by_role_usd={role: cost / 1e6 for role, cost in by_role.items()},
        )
