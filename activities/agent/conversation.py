"""An agent's conversation in the artifact store: references to its messages, in chunks.

Each message is stored once (content-addressed). The conversation's own record lists the
references of its newest messages and, for the older ones, of full chunks of CHUNK references,
each stored once too: a turn writes its new messages and a record of at most CHUNK references
plus one per chunk, so the store grows with the turns rather than with their square, and a load
reads everything in parallel rather than along a chain. A conversation stored whole (a list of
messages, as before references) still reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cofounder.artifacts import ArtifactStore

Message = dict[str, Any]
CHUNK = 64


@dataclass
class Conversation:
    """The messages, and the references of those already stored (a prefix of them)."""

    messages: list[Message] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)

    def replace_last(self, message: Message) -> None:
        """Put `message` in the last one's place: it is no longer the stored one."""
        self.messages[-1] = message
        del self.stored[len(self.messages) - 1 :]


async def load(store: ArtifactStore, ref: str) -> Conversation:
    record = await store.get_json(ref)
    if isinstance(record, list):  # stored whole
        return Conversation(messages=record)
    chunks = await asyncio.gather(*(store.get_json(chunk) for chunk in record.get("chunks", [])))
    refs = [ref for chunk in chunks for ref in chunk] + record["messages"]
    messages = await asyncio.gather(*(store.get_json(message) for message in refs))
    return Conversation(messages=list(messages), stored=refs)


async def save(store: ArtifactStore, conversation: Conversation) -> str:
    """A reference to the conversation; only what is not stored yet is written."""
    new = conversation.messages[len(conversation.stored) :]
    refs = [*conversation.stored, *await _put_all(store, new)]
    full = len(refs) // CHUNK * CHUNK
    # A full chunk is the same content every later turn: stored once, then only found.
    chunks = await _put_all(store, [refs[i : i + CHUNK] for i in range(0, full, CHUNK)])
    return await store.put_json({"chunks": chunks, "messages": refs[full:]})


async def _put_all(store: ArtifactStore, values: Sequence[Any]) -> list[str]:
    return list(await asyncio.gather(*(store.put_json(value) for value in values)))
