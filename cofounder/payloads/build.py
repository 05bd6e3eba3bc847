"""A build's identity, input and status: its workflow id and search attributes, its limits."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

if TYPE_CHECKING:
    # Only named here: BuildInput is rebuilt with Resume once that is defined (resume.py).
    from cofounder.payloads.resume import Resume
    from cofounder.payloads.session import SessionState

# Custom search attributes of a build's workflow: the API sets both at start, the workflow
# updates BuildStatus as it goes, the dev server registers them.
BUILD_STATUS = SearchAttributeKey.for_keyword("BuildStatus")
PROJECT = SearchAttributeKey.for_keyword("Project")
# Tenancy is in the keys: a build's owner travels with it into every place it leaves a trace.
OWNER = SearchAttributeKey.for_keyword("Owner")
# The one user of a stack without sign-in (and the owner of builds recorded before owners were).
LOCAL_OWNER = "local"


def build_workflow_id(build_id: str) -> str:
    """The id of a build's workflow: one per build, so Temporal refuses a second start."""
    return f"build-{build_id}"


class BuildStatus(StrEnum):
    QUEUED = "queued"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_BUDGET = "awaiting_budget"
    CODING = "coding"
    TESTING = "testing"
    DEBUGGING = "debugging"
    REVIEWING = "reviewing"
    PUBLISHING = "publishing"
    # The owner's payment failed: the build waits, spending nothing, until it is paid.
    ON_HOLD = "on_hold"
    SUCCEEDED = "succeeded"  # builds without a review session end here
    # The first pass succeeded: the pull request is open and the session awaits feedback.
    IN_REVIEW = "in_review"
    MERGED = "merged"
    CLOSED = "closed"
    EXPIRED = "expired"  # no feedback came within the session's idle time
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in ENDED

    @property
    def parked(self) -> bool:
        """Waiting on someone (a decision, money, feedback) with nothing running meanwhile."""
        return self in PARKED

    @property
    def settled(self) -> bool:
        """Where following a build stops: it ended, or its first pass is done (in review)."""
        return self.terminal or self is BuildStatus.IN_REVIEW


PARKED = frozenset(
    {
        BuildStatus.AWAITING_APPROVAL,
        BuildStatus.AWAITING_BUDGET,
        BuildStatus.ON_HOLD,
        BuildStatus.IN_REVIEW,
    }
)
ENDED = frozenset(
    {
        BuildStatus.SUCCEEDED,
        BuildStatus.MERGED,
        BuildStatus.CLOSED,
        BuildStatus.EXPIRED,
        BuildStatus.FAILED,
        BuildStatus.CANCELLED,
    }
)


class Usage(BaseModel):
    """Token and cost totals of one or more LLM calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_micro_usd: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})

    def __sub__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) - getattr(other, k) for k in Usage.model_fields})


class Deadlines(BaseModel):
    """How long (seconds) one step may keep retrying before the build fails; None: the default.

    Only a lost worker, a timeout or an unavailable dependency is retried until then; the
    defaults are named constants beside the workflow, tests pass short ones.
    """

    model: float | None = None
    sandbox: float | None = None
    publish: float | None = None
    record: float | None = None


class Budget(BaseModel):
    """A build's hard dollar limit on model calls, and how long it waits for more."""

    limit_micro_usd: int = Field(ge=0)
    # With no `extend_budget` within this long, a build that needs more is cancelled.
    wait_seconds: float = Field(default=86_400, gt=0)


class BudgetExtension(BaseModel):
    add_micro_usd: int = Field(gt=0)


class RepositoryLink(BaseModel):
    """A project's GitHub repository and the App's installation that has it."""

    repository: str  # owner/name
    installation_id: int


class ReviewSettings(BaseModel):
    """How a build's review session behaves; a build without them ends at `succeeded` once its
    pull request is open (builds from before sessions, and workflow tests)."""

    # With no feedback for this long, the session ends `expired`.
    idle_seconds: float = Field(default=14 * 86_400, gt=0)
    # A run continues as new after this many iterations (or a long history), references only.
    iterations_per_run: int = Field(default=10, ge=1)
    # Each iteration's model calls may cost at most this much; None: only the build's budget.
    iteration_budget_micro_usd: int | None = Field(default=None, ge=0)
    # Feedback that comes together (a review's comments) is awaited this long before starting.
    settle_seconds: float = Field(default=5.0, ge=0)


class BuildInput(BaseModel):
    build_id: str
    project: str
    goal: str
    require_approval: bool = False
    max_attempts: int = 3
    # Model turns one coding pass may take before the build gives up on it.
    max_turns: int = 30
    # Times the reviewer may send the code back to the coder with findings.
    max_review_rounds: int = 1
    deadlines: Deadlines = Field(default_factory=Deadlines)
    budget: Budget | None = None  # None: no limit (builds from before budgets)
    # A run continues as new past either, between two of the coder's turns, so no history
    # grows without bound (sizes as Temporal counts them: events, and bytes).
    continue_after_events: int = 1_500
    continue_after_bytes: int = 500_000
    # Set on a continued run: where the build picks up.
    resume: Resume | None = None
    owner: str = LOCAL_OWNER
    # The project's GitHub repository when it links one; None: its local bare remote.
    repository: RepositoryLink | None = None
    # After the pull request opens the build stays in review, iterating on feedback; None: it
    # ends `succeeded` there (builds from before review sessions).
    review: ReviewSettings | None = None
    # Set on a continued review session: where it picks up.
    session: SessionState | None = None
    # The model per role when the owner's plan does not allow the configured one (role → model).
    models: dict[str, str] = Field(default_factory=dict)


class BillingHold(BaseModel):
    """The owner's standing with billing: held after a failed payment, released once paid.
    `version` grows with every change, so signals that arrive out of order settle on the
    newest."""

    held: bool
    version: int


class ApprovalDecision(BaseModel):
    approved: bool
    comment: str = Field(default="", max_length=4000)
