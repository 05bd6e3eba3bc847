"""What a build publishes and records: its pull request, phase changes and cost."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from cofounder.payloads.build import LOCAL_OWNER, BuildStatus, RepositoryLink, Usage


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
    repository: RepositoryLink | None = None  # the project's GitHub repository, if linked


class PullRequestRef(BaseModel):
    id: int
    branch: str
    base: str
    head_sha: str
    title: str
    # Where it was opened, and its number and page there (None on the local remote).
    provider: str = "local"
    number: int | None = None
    url: str | None = None


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
