"""Project memory as a founder sees it: what a project remembers, and a convention stated."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from api.schemas.fields import GOAL_PATTERN, UtcDatetime, says_something
from cofounder.memory import Memory, MemoryKind
from cofounder.memory.model import TEXT_LIMIT

# What a founder may state directly; outcomes and feedback come from builds and reviews.
StatedKind = Literal["convention", "decision"]


MemoryText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TEXT_LIMIT, pattern=GOAL_PATTERN),
    BeforeValidator(says_something("text")),
    AfterValidator(str.strip),  # kept without surrounding whitespace, as a goal is
]


def source_url(source: str) -> str | None:
    """The source when it is a web link (a review comment's page); a build id is not one."""
    parts = urlsplit(source)
    return source if parts.scheme in ("http", "https") and parts.netloc else None


class MemoryCreate(BaseModel):
    """How the founder wants things done, or a decision taken: recalled into later plans."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: MemoryText = Field(examples=["We use pytest; no new dependencies without asking."])
    kind: StatedKind = Field(
        default="convention", description="convention (how things are done) or decision."
    )


class MemoryOut(BaseModel):
    """One thing the project remembers."""

    id: str = Field(description="Its id: what removing it names.")
    kind: MemoryKind = Field(
        description="decision (a plan's, with its reason), outcome (what a build made of its"
        " goal), feedback (the founder's or a reviewer's) or convention."
    )
    text: str
    source: str = Field(
        description="Where it came from: a build's id, a review comment's link, or `founder`."
    )
    source_url: str | None = Field(
        default=None, description="The source as a link, when it is one (a review comment)."
    )
    build_id: str | None = Field(default=None, description="The build it came from, if any.")
    created_at: UtcDatetime = Field(description="When it was remembered.")
    score: float | None = Field(
        default=None,
        description="How closely it matches the search (higher is closer); null in a listing.",
    )

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls(**memory.model_dump(), source_url=source_url(memory.source))


class MemoryList(BaseModel):
    """A project's memories: a search's best first, or newest first without one."""

    memories: list[MemoryOut]
