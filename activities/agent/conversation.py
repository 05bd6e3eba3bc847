"""An agent's conversation in the artifact store: a short list of references, one per message.

Each turn writes only its new messages and the list, so the store grows with the turns rather
than with their square: the messages turns share are stored once. A conversation
stored whole (a list of messages, as before references) still reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cofounder.artifacts import ArtifactStore

Message = dict[str, Any]


async def load(store: ArtifactStore, ref: str) -> list[Message]:
    """The conversation's messages, oldest first."""
    stored = await store.get_json(ref)
    if isinstance(stored, list):
        return stored
    return list(await asyncio.gather(*(store.get_json(m) for m in stored["messages"])))


async def save(store: ArtifactStore, messages: list[Message]) -> str:
    """A reference to `messages`; those already stored (content-addressed) are not written
    again, only the list is new."""
    refs = await asyncio.gather(*(store.put_json(message) for message in messages))
    return await store.put_json({"messages": list(refs)})
