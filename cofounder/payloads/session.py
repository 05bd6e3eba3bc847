"""A build's review session: the feedback that steers it after its pull request opens, each
iteration it makes on the same branch, and what a continued session run carries."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cofounder.payloads.build import LOCAL_OWNER, BuildInput, RepositoryLink, Usage
from cofounder.payloads.calls import PlanResult
from cofounder.payloads.records import PullRequestRef
from cofounder.payloads.resume import Resume
from cofounder.payloads.sandbox import SandboxRef
from cofounder.payloads.view import BuildView

# GitHub's own limit on a comment's body; longer feedback is cut there.
FEEDBACK_LIMIT = 65_536
# Feedback ids a session remembers, so a redelivered webhook or a repeated request is dropped.
SEEN_LIMIT = 1_000


class Feedback(BaseModel):
    """One piece of feedback on a build's pull request: a review, a review comment, a comment,
    failing checks, or a message through the API."""

    # Unique per piece of feedback (e.g. "github:review-comment:123"); a repeat is dropped.
    id: str = Field(min_length=1, max_length=200)
    kind: str  # review, review_comment, comment, checks, api
    author: str = ""
    body: str = Field(default="", max_length=FEEDBACK_LIMIT)
    url: str | None = None
    # Feedback with the same group (a review's id) is handled in one iteration.
    group: str | None = None
    # A GitHub review comment: its id, the one it answers, and the lines it is about.
    comment_id: int | None = None
    in_reply_to: int | None = None
    path: str | None = None
    line: int | None = None


class PullRequestClosed(BaseModel):
    """The pull request was merged or closed: the session ends."""

    merged: bool
    by: str = ""


class FeedbackRequest(BaseModel):
    """Gather an iteration's feedback (and the threads it belongs to) into the artifact store."""

    build_id: str
    owner: str = LOCAL_OWNER
    iteration: int
    items: list[Feedback]
    pull_request: PullRequestRef
    repository: RepositoryLink | None = None


class FeedbackBrief(BaseModel):
    feedback_ref: str  # the artifact the coder reads: every item, with its thread
    summary: str  # one line, for the reply and the status


class IterationRequest(BaseModel):
    """Publish one iteration: push its commit over the branch's head (when it changed code and
    its tests passed), record it, and reply on the pull request. Idempotent per iteration."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    iteration: int
    pull_request: PullRequestRef
    repository: RepositoryLink | None = None
    # The passing workspace to push over pull_request.head_sha; None: nothing to push.
    workspace_ref: str | None = None
    feedback: FeedbackBrief
    feedback_urls: list[str] = Field(default_factory=list)
    passed: bool = False
    test_summary: str = ""
    review_summary: str = ""
    error: str | None = None  # why the iteration pushed nothing, for the reply
    cost: Usage = Field(default_factory=Usage)  # the iteration's own
    date: str  # the commit's git date, fixed by the workflow so a retry makes the same commit


class IterationResult(BaseModel):
    head_sha: str  # the branch's head after the iteration (unchanged when nothing was pushed)
    pushed: bool
    reply_url: str | None = None  # the reply's page on GitHub; None on the local remote


class SessionState(BaseModel):
    """What a session run carries into the next one (continue-as-new): references only."""

    view: BuildView
    plan: PlanResult
    sandbox: SandboxRef | None = None
    test_command: str | None = None
    workspace_ref: str  # the code the pull request holds now
    queue: list[list[Feedback]] = Field(default_factory=list)  # batches, oldest first
    seen: list[str] = Field(default_factory=list)  # the latest SEEN_LIMIT feedback ids
    current: list[Feedback] | None = None  # the batch being handled when the run continued
    feedback: FeedbackBrief | None = None  # the current batch, gathered
    iteration_start: Usage | None = None  # the build's cost when the current iteration began
    iteration_started_at: datetime | None = None
    closed: PullRequestClosed | None = None


# BuildInput names Resume and SessionState (what a continued run picks up); it can be completed
# only now both exist.
BuildInput.model_rebuild(_types_namespace={"Resume": Resume, "SessionState": SessionState})
