"""The model calls' requests and results: plan, code, agent turn, debug and review."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cofounder.payloads.build import LOCAL_OWNER, RepositoryLink, Usage


class PlanRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    goal: str
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None
    # The model its plan allows for this role; None: the role's configured model.
    model: str | None = None
    repository: RepositoryLink | None = None  # the project's GitHub repository, if linked
    memory_ref: str | None = None  # what the project remembers that bears on the goal


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
    # The model its plan allows for this role; None: the role's configured model.
    model: str | None = None


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
    # The review session's feedback this pass answers (FeedbackBrief.feedback_ref).
    feedback_ref: str | None = None
    # What the project remembers that bears on that feedback (Recalled.memory_ref).
    memory_ref: str | None = None


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
    # The model its plan allows for this role; None: the role's configured model.
    model: str | None = None


class ToolCall(BaseModel):
    id: str
    name: str


class TurnResult(BaseModel):
    response_ref: str
    conversation_ref: str  # the conversation with this turn's answer appended
    tool_calls: list[ToolCall] = Field(default_factory=list)
    stop_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)


class ChangeRequest(BaseModel):
    """What the debugger and the reviewer read: the change as a diff and a test run's log."""

    build_id: str
    owner: str = LOCAL_OWNER
    goal: str
    plan_ref: str
    workspace_ref: str
    log_ref: str
    # What the build may still spend; a call that could cost more is not made.
    allowance_micro_usd: int | None = None
    # The model its plan allows for this role; None: the role's configured model.
    model: str | None = None
    # The prompt shows the change from this snapshot of the base; None: from an empty workspace.
    base_ref: str | None = None


class DebugRequest(ChangeRequest):
    step: int | None = None  # the build's step the tests failed in, as Brief.step


class DebugResult(BaseModel):
    diagnosis_ref: str
    summary: str
    usage: Usage = Field(default_factory=Usage)


class ReviewRequest(ChangeRequest):
    pass


class ReviewResult(BaseModel):
    approved: bool
    summary: str
    review_ref: str
    usage: Usage = Field(default_factory=Usage)
