"""Request and response bodies of the HTTP API (they are the OpenAPI schema at /docs)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)

from cofounder.db import Build, PullRequest
from cofounder.payloads import BuildStatus, BuildView

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
GOAL_MAX = 4000
# PostgreSQL text cannot hold NUL, so free text refuses it here rather than with a 500 on insert.
TEXT_PATTERN = r"^[^\x00]*$"
# Text with a character other than whitespace: JSON Schema's way to say "not blank".
GOAL_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


class ErrorOut(BaseModel):
    """A refusal other than a 422 (which lists each invalid field): what went wrong, for people."""

    detail: str


def check_slug(value: object) -> object:
    """A project slug: lowercase letters, digits and '-', 1 to 63 characters."""
    if isinstance(value, str) and not SLUG_PATTERN.fullmatch(value):
        raise ValueError(
            "project must be 1-63 characters of lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return value


def check_text(value: object) -> object:
    """Free text the database can store: no NUL character."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain a NUL character")
    return value


def check_goal(value: object) -> object:
    """A goal says something: it holds a character other than whitespace (and no NUL)."""
    check_text(value)
    if isinstance(value, str) and not value.strip():
        raise ValueError("goal must contain a character other than whitespace")
    return value


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# The constraints put each rule into /openapi.json; the check before them refuses a mismatch in
# a sentence instead of pydantic's "String should match pattern '...'". A non-string passes the
# check untouched and meets pydantic's own type error.
Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=SLUG_PATTERN.pattern),
    BeforeValidator(check_slug),
]
# Lengths count the goal as sent, so the schema's limits are the ones enforced; it is stored
# without surrounding whitespace.
Goal = Annotated[
    str,
    StringConstraints(min_length=1, max_length=GOAL_MAX, pattern=GOAL_PATTERN),
    BeforeValidator(check_goal),
    AfterValidator(str.strip),
]
Comment = Annotated[
    str, StringConstraints(max_length=4000, pattern=TEXT_PATTERN), BeforeValidator(check_text)
]
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class BuildCreate(BaseModel):
    """What a founder asks for: a goal in plain words, for one project."""

    # Strict: "yes" or 1 is not a boolean in the schema, so it is not one here either.
    model_config = ConfigDict(extra="forbid", strict=True)

    project: Slug = Field(examples=["demo"])
    goal: Goal = Field(examples=["add a /healthz endpoint with tests"])
    require_approval: bool = Field(
        default=False, description="Pause after planning until the plan is approved."
    )
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="The most the build may spend on model calls (default: the server's).",
        examples=[2.5],
    )


class BudgetRequest(BaseModel):
    """More budget for a build (one awaiting budget goes on if it is now enough)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    add_usd: float = Field(gt=0, le=10_000, examples=[5.0])


class ApprovalRequest(BaseModel):
    """Approve the plan (the build goes on) or reject it (the build is cancelled)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    approved: bool
    comment: Comment = ""


class Cost(BaseModel):
    usd: float = Field(description="Dollars spent on model calls so far.")
    input_tokens: int
    output_tokens: int

    @classmethod
    def of(cls, micro_usd: int, input_tokens: int, output_tokens: int) -> Cost:
        return cls(
            usd=micro_usd / 1_000_000, input_tokens=input_tokens, output_tokens=output_tokens
        )


class PullRequestSummary(BaseModel):
    id: int
    title: str
    branch: str
    base: str
    head_sha: str


class ProgressOut(BaseModel):
    """One phase change of a build, in order (`seq` counts from 1)."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    run_id: str = Field(description="The workflow run that recorded it (a reset starts a new run).")
    status: BuildStatus
    attempt: int
    error: str | None
    cost_micro_usd: int = Field(exclude=True)
    at: UtcDatetime

    @computed_field(description="Dollars spent when this phase began.")  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return self.cost_micro_usd / 1_000_000


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


class BuildOut(BaseModel):
    """One build as the dashboard and the CLI see it."""

    id: str
    project: str
    goal: str
    status: BuildStatus
    attempts: int
    require_approval: bool
    workflow_id: str
    run_id: str | None = Field(
        default=None, description="The workflow's current run, when known; progress is its story."
    )
    pull_request: PullRequestSummary | None
    cost: Cost
    error: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None
    budget: BudgetOut | None = Field(
        default=None,
        description="The limit, what is left and (single-build reads) the spend per role; "
        "null for builds from before budgets.",
    )
    progress: list[ProgressOut] = Field(
        default_factory=list,
        description="The current run's phase changes in order, with those of the runs it was "
        "reset or continued from up to that point (single-build reads only).",
    )

    @classmethod
    def from_row(cls, build: Build, project: str, pr: PullRequest | None) -> BuildOut:
        """The API's view of a build row (and its pull request row, if any)."""
        pull_request = None
        if pr is not None:
            pull_request = PullRequestSummary(
                id=pr.id, title=pr.title, branch=pr.branch, base=pr.base, head_sha=pr.head_sha
            )
        return cls(
            id=build.id,
            project=project,
            goal=build.goal,
            status=BuildStatus(build.status),
            attempts=build.attempts,
            require_approval=build.require_approval,
            workflow_id=build.workflow_id,
            run_id=build.run_id,
            pull_request=pull_request,
            cost=Cost.of(build.cost_micro_usd, build.input_tokens, build.output_tokens),
            error=build.error,
            created_at=build.created_at,
            updated_at=build.updated_at,
            finished_at=build.finished_at,
            budget=None
            if build.budget_micro_usd is None
            else BudgetOut.recorded(build.budget_micro_usd, build.cost_micro_usd, {}),
        )

    def with_view(self, view: BuildView) -> BuildOut:
        """This build with the workflow's live state laid over the database row."""
        pull_request = self.pull_request
        if view.pull_request is not None:
            pull_request = PullRequestSummary.model_validate(view.pull_request.model_dump())
        usage = view.cost
        return self.model_copy(
            update={
                "status": view.status,
                "attempts": view.attempt,
                "cost": Cost.of(usage.cost_micro_usd, usage.input_tokens, usage.output_tokens),
                "error": view.last_error,
                "pull_request": pull_request,
                "run_id": view.run_id or self.run_id,
                "budget": BudgetOut.of(view),
            }
        )


class BuildList(BaseModel):
    builds: list[BuildOut]


class PullRequestOut(BaseModel):
    """The pull request a build opened, with its full diff (against main, from where the
    build's branch started), and whether it was merged."""

    id: int = Field(examples=[1])
    title: str = Field(examples=["slugkit: a slugify library with tests"])
    body: str = Field(examples=["## Goal\n\na slugify library with tests\n"])
    base: str = Field(examples=["main"])
    branch: str = Field(examples=["cofounder/3f9c2a1b7d4e5f60"])
    head_sha: str = Field(examples=["9fceb02d0ae598e95dc970b74767f19372d61af8"])
    diff: str = Field(examples=["diff --git a/slugkit/__init__.py b/slugkit/__init__.py\n…"])
    created_at: UtcDatetime
    state: Literal["open", "merged"] = Field(default="open", examples=["merged"])
    merged_at: UtcDatetime | None = Field(default=None, description="When it was merged.")
    merge_commit_sha: str | None = Field(
        default=None,
        description="What main moved to: the branch's head when main was fast-forwarded, "
        "else the merge commit.",
        examples=["e83c5163316f89bfbde7d9ab23ca2e25604af290"],
    )

    @classmethod
    def from_row(cls, pr: PullRequest) -> PullRequestOut:
        return cls.model_validate(pr, from_attributes=True)


class PlanStep(BaseModel):
    """One step of a plan, with the files it expects to touch. A step given as plain text (plans
    from before steps named their files) is its title."""

    title: str = Field(examples=["Create the slugkit package with slugify()"])
    description: str | None = Field(default=None, examples=["slugify(text, separator='-')"])
    files: list[str] = Field(default_factory=list, examples=[["slugkit/__init__.py"]])

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return {"title": value}
        if isinstance(value, dict) and not value.get("title") and value.get("description"):
            return {**value, "title": value["description"], "description": None}
        if isinstance(value, dict) and value.get("description") == "":
            return {**value, "description": None}
        return value


class PlanOut(BaseModel):
    """The architect's plan of a build: what it will do, in which steps and files."""

    # Lenient on purpose: plans recorded by older and newer architects all read; the ones that
    # predate a field get its default.
    build_id: str = Field(examples=["3f9c2a1b7d4e5f60"])
    title: str = Field(examples=["slugkit: a slugify library with tests"])
    summary: str = Field(default="", examples=["A dependency-free `slugify()` with pytest tests."])
    steps: list[PlanStep] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list, examples=[["slugkit/__init__.py"]])
    test_command: str | None = Field(
        default=None,
        description="How the tests run; null: the project's own (pytest, or `npm test`).",
        examples=["python -m pytest -q"],
    )
    estimated_cost_usd: float | None = Field(
        default=None,
        description="The architect's estimate of the build's model cost.",
        examples=[0.42],
    )


class Health(BaseModel):
    status: str = "ok"
    checks: dict[str, str] | None = Field(default=None, description='"ok" or "down: <why>"')
    detail: str | None = None
