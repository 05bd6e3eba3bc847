"""The pull request a build opened, as the API shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.fields import UtcDatetime
from cofounder.db import PullRequest


class PullRequestOut(BaseModel):
    """The pull request a build opened, with its full diff (against main, from where the
    build's branch started), and whether it was merged."""

    id: int = Field(examples=[1])
    title: str = Field(examples=["slugkit: a slugify library with tests"])
    body: str = Field(examples=["## Goal\n\na slugify library with tests\n"])
    base: str = Field(examples=["main"])
    branch: str = Field(examples=["cofounder/3f9c2a1b7d4e5f60"])
    head_sha: str = Field(examples=["9fceb02d0ae598e95dc970b74767f19372d61af8"])
    diff: str = Field(examples=["diff --git a/slugkit/__init__.py b/slugkit/__init__.py\n…"])
    created_at: UtcDatetime
    provider: str = Field(default="local", description="local, or github", examples=["github"])
    number: int | None = Field(default=None, description="Its number on GitHub; null when local.")
    url: str | None = Field(default=None, description="Its page on GitHub; null when local.")
    state: Literal["open", "merged", "closed"] = Field(default="open", examples=["merged"])
    merged_at: UtcDatetime | None = Field(default=None, description="When it was merged.")
    merge_commit_sha: str | None = Field(
        default=None,
        description="What main moved to: the branch's head when main was fast-forwarded, "
        "else the merge commit.",
        examples=["e83c5163316f89bfbde7d9ab23ca2e25604af290"],
    )

    @classmethod
    def from_row(cls, pr: PullRequest) -> PullRequestOut:
        return cls.model_validate(pr, from_attributes=True)
