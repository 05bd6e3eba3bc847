"""What a memory is, and the interface every store keeps."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, Protocol, get_args

from pydantic import BaseModel, Field

# decision: one of a plan's decisions and its reason; outcome: what a build made of its goal
# (built, failed and why); feedback: the founder's feedback or a review comment; convention:
# how the founder wants things done ("we use pytest", "no new dependencies").
MemoryKind = Literal["decision", "outcome", "feedback", "convention"]
KINDS: tuple[str, ...] = get_args(MemoryKind)

TEXT_LIMIT = 2_000  # characters one memory keeps; recall budgets are counted in these too
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class MemoryNotFound(LookupError):
    """No memory by that id in the scope asked (it may be another owner's: the same answer)."""


class Scope(BaseModel):
    """Whose memories: every store call is confined to one owner's one project."""

    owner: str = Field(min_length=1, max_length=64)
    project: str = Field(min_length=1, max_length=63)


class NewMemory(BaseModel):
    """Something to remember. `key` makes remembering idempotent: the same key in the same
    scope is the same memory (a retried activity adds nothing), and a removed one stays removed."""

    key: str = Field(min_length=1, max_length=128)
    kind: MemoryKind
    text: str = Field(min_length=1, max_length=TEXT_LIMIT)
    # Where it came from: a build id, or a link (a review comment's URL).
    source: str = Field(min_length=1, max_length=500)
    build_id: str | None = Field(default=None, max_length=32)


class Memory(BaseModel):
    """A remembered item as stores return it; `score` ranks a search's results (higher is
    closer), None in listings."""

    id: str
    kind: MemoryKind
    text: str
    source: str
    build_id: str | None = Field(default=None, max_length=32)
    created_at: datetime
    score: float | None = None


class MemoryStore(Protocol):
    """Where a project's memories live. Implementations scope every call by `scope`."""

    async def add(self, scope: Scope, items: list[NewMemory]) -> list[str]:
        """Remember `items`; the ids of those now kept, in order. An item whose key the scope
        already has (kept, or removed by the founder) is not added again; a kept one's id is
        returned, a removed one's is left out."""
        ...

    async def search(self, scope: Scope, query: str, limit: int) -> list[Memory]:
        """The scope's memories most relevant to `query`, best first, at most `limit`."""
        ...

    async def list(self, scope: Scope, limit: int, offset: int = 0) -> list[Memory]:
        """The scope's memories, newest first."""
        ...

    async def delete(self, scope: Scope, memory_id: str) -> None:
        """Remove one memory for good: it is never listed or recalled again.
        MemoryNotFound when the scope has none by that id."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


def search_words(query: str, limit: int = 32) -> list[str]:
    """The distinct words of a query, lowercased, in order: what full-text stores match on."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)[:limit]
