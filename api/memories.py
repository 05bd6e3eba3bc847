"""What a project remembers, as its founder reads and corrects it: the memory store's calls,
confined to a project the caller owns (any other answers 404, as every project route does)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, NotFound
from api.projects import load_project
from api.schemas.memories import MemoryCreate, MemoryOut
from cofounder.memory import MemoryNotFound, MemoryStore, NewMemory, Scope

# The source of what a founder states directly, rather than a build or a review comment.
FOUNDER = "founder"
KEY_PREFIX = "founder:"


async def owned_scope(session: AsyncSession, owner: str, project: str) -> Scope:
    """The scope of `owner`'s project; NotFound when they have no such project."""
    await load_project(session, owner, project)
    await session.rollback()  # the store has sessions of its own: hold no connection meanwhile
    return Scope(owner=owner, project=project)


async def find(
    store: MemoryStore, scope: Scope, query: str | None, limit: int, offset: int = 0
) -> list[MemoryOut]:
    """The search's matches, best first, when there is a query; else the newest first."""
    if query is None:
        found = await store.list(scope, limit, offset)
    else:
        # Stores rank a whole search at once, so a later page is the tail of a longer one.
        found = (await store.search(scope, query, offset + limit))[offset:]
    return [MemoryOut.of(memory) for memory in found]


async def forget(store: MemoryStore, scope: Scope, memory_id: str) -> None:
    """Remove one memory for good; NotFound when the scope has none by that id (another
    owner's included: the same answer)."""
    try:
        await store.delete(scope, memory_id)
    except MemoryNotFound:
        raise NotFound(f"project {scope.project} has no memory {memory_id}") from None


async def remember(
    store: MemoryStore, scope: Scope, body: MemoryCreate, key: str | None = None
) -> MemoryOut:
    """Keep what the founder stated; the same body with the same `key` (an Idempotency-Key)
    again is kept once."""
    item = NewMemory(key=_memory_key(body, key), kind=body.kind, text=body.text, source=FOUNDER)
    received = datetime.now(UTC)
    ids = await store.add(scope, [item])
    if not ids:  # the store keeps a removed memory's key from coming back
        raise Conflict(
            "the memory this Idempotency-Key made has been removed; send it with a new key to"
            " state it again"
        )
    # Built from the request, not read back: a store may index what it is given later (Mem0's
    # platform does), so a read right after the add need not find it.
    return MemoryOut(id=ids[0], kind=body.kind, text=body.text, source=FOUNDER, created_at=received)


def _memory_key(body: MemoryCreate, key: str | None) -> str:
    """The store's key: the Idempotency-Key and the body together, so a repeat is the same
    memory and the key reused with other words is another (never the first one's text
    answered for the second's); a fresh one without a key."""
    if key is None:
        return KEY_PREFIX + uuid.uuid4().hex
    stated = "\n".join((key, body.kind, body.text)).encode("utf-8", "surrogatepass")
    return KEY_PREFIX + hashlib.sha256(stated).hexdigest()
