"""Typed payloads that cross the workflow/activity boundary.

Everything here travels through Temporal history, so it carries references into the artifact
store and short summaries, never file contents, transcripts or logs. Fields are only ever added
with defaults, so recorded histories keep decoding.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

SUMMARY_LIMIT = 2000

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
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED)


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


class PlanRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    goal: str
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None


class PlanResult(BaseModel):
    plan_ref: str
    title: str
    summary: str
    files: list[str] = Field(default_factory=list)
    test_command: str | None = None  # the plan's; None: the project's own
    usage: Usage = Field(default_factory=Usage)
    # The titles of the plan's ordered steps (empty in histories from before steps).
    steps: list[str] = Field(default_factory=list)


class CodeRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    goal: str
    plan_ref: str
    workspace_ref: str | None = None
    diagnosis_ref: str | None = None
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None


class CodeResult(BaseModel):
    workspace_ref: str
    files: list[str]
    usage: Usage = Field(default_factory=Usage)


class Brief(BaseModel):
    """What an agent's conversation starts from: references, composed into words by the turn."""

    goal: str
    plan_ref: str
    diagnosis_ref: str | None = None  # the debugger's reading of a failing test run
    log_ref: str | None = None  # that run's log
    review_ref: str | None = None  # the reviewer's findings to address
    # The build's step this pass works on (1-based, as BuildView.steps counts: the plan's steps,
    # then review rounds); None: the whole plan at once (builds from before steps).
    step: int | None = None
    # The workspace as the build found it, to diff against; None: it started empty.
    base_ref: str | None = None


class TurnRequest(BaseModel):
    """One model turn of an agent loop: the conversation so far travels as a reference."""

    build_id: str
    owner: str = LOCAL_OWNER
    role: str = "coder"
    brief: Brief
    conversation_ref: str | None = None  # None: the first turn, started from the brief
    # A word from the workflow (the loop guard) added to the conversation before this turn.
    note: str | None = None
    # Go on in `conversation_ref` with a new message from the brief (a fix after failed tests).
    follow_up: bool = False
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None


class ToolCall(BaseModel):
    id: str
    name: str


class TurnResult(BaseModel):
    response_ref: str
    conversation_ref: str  # the conversation with this turn's answer appended
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)


class ToolOutcomeSummary(BaseModel):
    name: str
    # The call and its result, hashed: the same call answered the same way has the same one.
    signature: str
    is_error: bool = False


class SandboxRequest(BaseModel):
    """Open (or reconnect to) a build's sandbox session."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str = ""
    workspace_ref: str | None = None  # its files tell the project's language


class SandboxRef(BaseModel):
    """A build's sandbox session, kept in workflow state for the build's whole life."""

    session_id: str
    runtime: str
    language: str = "python"
    # Bumped when a lost session is replaced from the last snapshot.
    generation: int = 0
    # The workspace to restore a lost session from: the last test run's, or until then the base's.
    snapshot_ref: str | None = None
    # The commit of the project's main the workspace was checked out from; None: it started empty.
    base_commit: str | None = None
    # That commit's files as a snapshot, kept for diffs; None: the workspace started empty.
    base_ref: str | None = None


class ToolsRequest(BaseModel):
    """Run one turn's tool calls in the build's sandbox and answer them in the conversation."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str = ""
    sandbox: SandboxRef
    response_ref: str
    conversation_ref: str


class ToolsResult(BaseModel):
    conversation_ref: str  # with the tool results appended
    outcomes: list[ToolOutcomeSummary] = Field(default_factory=list)
    changed: bool = False  # the workspace's files may have changed
    sandbox: SandboxRef  # the session, replaced and restored if it was lost


class TestRequest(BaseModel):
    __test__ = False  # not a pytest test class, despite the name
    build_id: str
    # The files to test; None: the session's workspace as the agent left it.
    workspace_ref: str | None = None
    owner: str = LOCAL_OWNER
    project: str = ""
    # None (histories from before sessions): a sandbox just for this run.
    sandbox: SandboxRef | None = None
    # None: the project's own (pytest, or `npm test` for a package.json with a test script).
    test_command: str | None = None


class TestReport(BaseModel):
    __test__ = False
    passed: bool
    exit_code: int
    passed_count: int = 0
    failed_count: int = 0
    summary: str = Field(default="", max_length=SUMMARY_LIMIT)
    log_ref: str
    timed_out: bool = False
    truncated: bool = False
    # The session after the run: reconnected, or replaced and restored if it was lost.
    sandbox: SandboxRef | None = None


class DebugRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    goal: str
    plan_ref: str
    workspace_ref: str
    log_ref: str
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None
    # The prompt shows the change from this snapshot of the base; None: from an empty workspace.
    base_ref: str | None = None
    step: int | None = None  # the build's step the tests failed in, as Brief.step


class DebugResult(BaseModel):
    diagnosis_ref: str
    summary: str
    usage: Usage = Field(default_factory=Usage)


class ReviewRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    goal: str
    plan_ref: str
    workspace_ref: str
    log_ref: str
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None
    # As DebugRequest's: the reviewer reads the diff against the base and the test log.
    base_ref: str | None = None


class ReviewResult(BaseModel):
    approved: bool
    summary: str
    review_ref: str
    usage: Usage = Field(default_factory=Usage)


class PublishRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    goal: str
    title: str
    plan_ref: str
    workspace_ref: str
    review_ref: str
    test_summary: str
    attempts: int
    cost: Usage


class PullRequestRef(BaseModel):
    id: int
    branch: str
    base: str
    head_sha: str
    title: str


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


class RecordedEvent(BaseModel):
    """Which run recorded an event: a reset run replaying its base's history learns its parent."""

    run_id: str
    seq: int


class CostSummary(BaseModel):
    build_id: str
    usage: Usage


class ApprovalDecision(BaseModel):
    approved: bool
    comment: str = Field(default="", max_length=4000)


class StepView(BaseModel):
    """One step of the build as the status shows it: its title, where it is, what it cost."""

    title: str
    status: str = "pending"  # pending, coding, testing, debugging, done
    attempts: int = 0  # test runs so far
    cost: Usage = Field(default_factory=Usage)


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
    phases: int = 0
    run_id: str = ""


class GuardState(BaseModel):
    """The loop guard's memory: the last turn's call signatures and how often they repeated."""

    last: list[str] | None = None
    repeats: int = 0


class Resume(BaseModel):
    """Where a build that continued as new picks up: in a coding pass, between two turns."""

    view: BuildView
    plan: PlanResult
    sandbox: SandboxRef
    test_command: str | None = None
    round: int = 0  # the review round
    attempt: int = 1  # the test run this coding pass leads to
    brief: Brief
    conversation_ref: str
    turn: int  # the next turn's number
    note: str | None = None
    guard: GuardState = Field(default_factory=GuardState)


BuildInput.model_rebuild()
