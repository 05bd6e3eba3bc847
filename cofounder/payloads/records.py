"""What a build publishes and records: its pull request, phase changes and cost."""

from __future__ import annotations

from pydantic import BaseModel

from cofounder.payloads.build import LOCAL_OWNER, RepositoryLink, Usage


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


class RecordedEvent(BaseModel):
    """Which run recorded an event: a reset run replaying its base's history learns its parent."""

    run_id: str
    seq: int


class CostSummary(BaseModel):
    build_id: str
    usage: Usage
