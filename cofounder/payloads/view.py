"""What the `status` query answers: a build's live state, step by step."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cofounder.payloads.build import BuildStatus, Usage
from cofounder.payloads.records import PullRequestRef


class StepView(BaseModel):
    """One step of the build as the status shows it: its title, where it is, what it cost."""

    title: str
    status: str = "pending"  # pending, coding, testing, debugging, done
    attempts: int = 0  # test runs so far
    cost: Usage = Field(default_factory=Usage)


# The iterations a status shows (the latest ones): a long session's view stays small.
ITERATIONS_SHOWN = 20


class IterationView(BaseModel):
    """One iteration as the status shows it."""

    number: int
    feedback: str  # the one-line summary of what it answered
    status: str = "running"  # running, pushed, unchanged, failed
    cost: Usage = Field(default_factory=Usage)
    head_sha: str | None = None
    reply_url: str | None = None
    error: str | None = None


class BuildView(BaseModel):
    """What the `status` query answers: the live state of one build."""

    build_id: str
    status: BuildStatus
    attempt: int = 0  # the build's test runs so far, every step's together
    max_attempts: int = 3  # test runs one step (or review round) may take
    cost: Usage = Field(default_factory=Usage)
    last_error: str | None = None
    plan_title: str | None = None
    # The whole plan, in the artifact store under the build's owner, once it exists.
    plan_ref: str | None = None
    budget_micro_usd: int | None = None  # the limit, extensions included; None: no limit
    # While awaiting_budget: the worst case of the call that is waiting.
    budget_needed_micro_usd: int | None = None
    cost_by_role: dict[str, Usage] = Field(default_factory=dict)
    # The plan's steps, then one per review round that sent the code back, in order.
    steps: list[StepView] = Field(default_factory=list)
    step: int | None = None  # the one being worked on (1-based); None: none
    pull_request: PullRequestRef | None = None
    # The review session's iterations (the latest ITERATIONS_SHOWN) and how many in all.
    iterations: list[IterationView] = Field(default_factory=list)
    iteration: int = 0
    queued_feedback: int = 0  # batches waiting for an iteration
    # The owner's payment failed: no model call is made until it is paid (status on_hold).
    held: bool = False
    hold_version: int = 0  # the newest BillingHold applied; an older one is dropped
    phases: int = 0
    run_id: str = ""


class StatusUpdate(BaseModel):
    """A phase change: updates the build row and appends event `seq` of run `run_id`.

    Events are keyed by (build, run, seq): a retried write is a no-op, while a reset or
    continued-as-new run, whose seq numbers overlap an earlier run's, keeps its own. The first
    event of a run names `parent_run_id`, the run whose events came before it (reset base or
    continued run), so readers can tell each run's story apart.
    """

    build_id: str
    status: BuildStatus
    attempts: int = 0
    error: str | None = None
    seq: int = 0
    at: datetime | None = None
    cost_micro_usd: int = 0
    run_id: str = ""
    parent_run_id: str | None = None
    # The live view as of this phase; the row keeps it so a parked build reads without a worker.
    view: BuildView | None = None
