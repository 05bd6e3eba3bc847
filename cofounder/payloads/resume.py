"""Where a build that continued as new picks up, and the loop guard's memory it carries."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cofounder.payloads.calls import Brief, PlanResult
from cofounder.payloads.sandbox import SandboxRef
from cofounder.payloads.view import BuildView


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
