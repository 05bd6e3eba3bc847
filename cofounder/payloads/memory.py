"""What the build workflow asks of project memory: recall before planning and before each
review iteration, remember what the build decided, made of its goal and was told."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cofounder.payloads.build import LOCAL_OWNER, BuildStatus


class RecallRequest(BaseModel):
    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    query: str = Field(max_length=20_000)  # the goal, or the feedback an iteration answers


class Recalled(BaseModel):
    """What was recalled, in words, in the artifact store; None when nothing was."""

    memory_ref: str | None = None
    ids: list[str] = Field(default_factory=list)


class RememberRequest(BaseModel):
    """A moment worth remembering: the end of the first pass (or of the build), or an
    iteration answered. The activity reads the plan and the feedback by reference."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str
    goal: str
    status: BuildStatus
    plan_ref: str | None = None
    error: str | None = None
    pull_request_url: str | None = None
    feedback_ref: str | None = None  # an iteration's gathered feedback
    iteration: int | None = None


class Remembered(BaseModel):
    ids: list[str] = Field(default_factory=list)
