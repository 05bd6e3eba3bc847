"""Builds: the request that starts one, and a build as the dashboard and the CLI see it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field

from api.schemas.budget import BudgetOut
from api.schemas.fields import Goal, Slug, UtcDatetime
from cofounder.db import Build, PullRequest, ReviewIteration
from cofounder.payloads import BuildStatus, BuildView, IterationView, StepView


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
    provider: str = Field(default="local", description="local, or github")
    url: str | None = Field(default=None, description="Its page on GitHub; null when local.")


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


class StepOut(BaseModel):
    """One step of a build: the plan's steps in order, then one per review round that sent
    the code back."""

    number: int = Field(description="Counts from 1, as the ledger's rows name it.")
    title: str | None = Field(description="Null once the build has ended (the ledger keeps none).")
    status: str | None = Field(
        description="pending, coding, testing, debugging or done; null once the build has ended."
    )
    attempts: int | None = Field(description="Its test runs; null once the build has ended.")
    cost: Cost

    @classmethod
    def of(cls, number: int, step: StepView) -> StepOut:
        used = step.cost
        cost = Cost.of(used.cost_micro_usd, used.input_tokens, used.output_tokens)
        return cls(
            number=number, title=step.title, status=step.status, attempts=step.attempts, cost=cost
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
    steps: list[StepOut] = Field(
        default_factory=list,
        description="The build's steps with what each cost (single-build reads only; builds "
        "from before steps have none).",
    )
    iterations: list[IterationOut] = Field(
        default_factory=list,
        description="The review session's iterations, latest last (single-build reads only).",
    )
    queued_feedback: int = Field(
        default=0, description="Feedback waiting for an iteration (live builds only)."
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
                id=pr.id,
                title=pr.title,
                branch=pr.branch,
                base=pr.base,
                head_sha=pr.head_sha,
                provider=pr.provider,
                url=pr.url,
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
                "steps": [StepOut.of(n, step) for n, step in enumerate(view.steps, start=1)],
                "iterations": [IterationOut.of(iteration) for iteration in view.iterations],
                "queued_feedback": view.queued_feedback,
            }
        )


class IterationOut(BaseModel):
    """One iteration of the build's review session: the feedback it answered and its reply."""

    number: int
    feedback: str = Field(description="What it answered, in one line.")
    status: str = Field(description="running, pushed, unchanged, failed or abandoned.")
    head_sha: str | None = Field(description="The branch's head after it.")
    reply_url: str | None = Field(description="Its reply on GitHub; null on the local remote.")
    error: str | None = Field(description="Why it pushed nothing, when it failed.")
    cost: Cost = Field(description="Its model calls; tokens only while the build runs.")

    @classmethod
    def recorded(cls, row: ReviewIteration) -> IterationOut:
        """An iteration as its row keeps it (tokens are in the ledger, not here)."""
        return cls(
            number=row.number,
            feedback=row.feedback_summary,
            status=row.status,
            head_sha=row.head_sha,
            reply_url=row.reply_url,
            error=row.error,
            cost=Cost.of(row.cost_micro_usd, 0, 0),
        )

    @classmethod
    def of(cls, iteration: IterationView) -> IterationOut:
        used = iteration.cost
        return cls(
            **iteration.model_dump(exclude={"cost"}),
            cost=Cost.of(used.cost_micro_usd, used.input_tokens, used.output_tokens),
        )


class BuildList(BaseModel):
    builds: list[BuildOut]
