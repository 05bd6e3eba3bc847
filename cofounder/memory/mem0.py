"""Project memory over Mem0 (`mem0ai`, the `mem0` extra): its open-source `AsyncMemory` with the
vector store, embedder and history database a config names (COFOUNDER_MEM0_CONFIG).

Mem0 scopes by `user_id` (our owner) and `agent_id` (our project); every answer is checked
against the scope again, so a filter Mem0 or a vector store got wrong cannot hand back another
owner's memory. Items are kept verbatim (`infer=False`): only the embedder is called, no LLM.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from cofounder.memory.mem0_tombstones import Tombstones
from cofounder.memory.model import Memory, MemoryNotFound, NewMemory, Scope, search_words

if TYPE_CHECKING:
    from mem0 import AsyncMemory

    from cofounder.settings import Settings

log = structlog.get_logger()

# Mem0 lists a scope unordered, so listing sorts the scope itself: at most this many memories.
SCAN_LIMIT = 10_000


def load_mem0(home: Path | None = None) -> ModuleType:
    """Imports mem0 with its telemetry off and its own files (MEM0_DIR) under `home` rather than
    ~/.mem0. Mem0 reads both at import, so the first import in a process decides."""
    os.environ["MEM0_TELEMETRY"] = "False"
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("MEM0_DIR", str(home))
    try:
        import mem0
    except ImportError as e:
        raise RuntimeError("Mem0 memory needs the mem0 extra: pip install 'cofounder[mem0]'") from e
    return mem0


@dataclass(frozen=True)
class _Row:
    memory: Memory
    key: str
    seq: int


def scope_filters(scope: Scope) -> dict[str, Any]:
    """Mem0's entity filters for a scope."""
    return {"user_id": scope.owner, "agent_id": scope.project}


def parse_row(scope: Scope, result: dict[str, Any]) -> _Row | None:
    """One of Mem0's results as ours; None when it is not the scope's, or not one we wrote."""
    if result.get("user_id") != scope.owner or result.get("agent_id") != scope.project:
        return None
    meta = result.get("metadata") or {}
    try:
        memory = Memory(
            id=str(result["id"]),
            kind=meta["kind"],
            text=result["memory"],
            source=meta["source"],
            build_id=meta.get("build_id"),
            created_at=result["created_at"],
            score=result.get("score"),
        )
    except (KeyError, ValidationError):
        return None
    return _Row(memory, str(meta.get("key", "")), int(meta.get("seq") or 0))


class Mem0Memory:
    """A MemoryStore over Mem0's open-source AsyncMemory."""

    def __init__(self, memory: AsyncMemory, tombstones: Tombstones | None = None) -> None:
        self._memory = memory
        # Beside Mem0's own history database: whoever shares one shares the other.
        history = Path(memory.config.history_db_path)
        self._tombstones = tombstones or Tombstones(history.with_name("cofounder_tombstones.db"))
        self._seq = 0

    @classmethod
    def from_config(cls, config: dict[str, Any], home: Path | None = None) -> Mem0Memory:
        """From Mem0's open-source config (as `AsyncMemory.from_config` takes it); opens the
        vector store and history database (blocking: call it at start-up)."""
        return cls(load_mem0(home).AsyncMemory.from_config(config))

    @classmethod
    def from_settings(cls, settings: Settings) -> Mem0Memory:
        """From the JSON file COFOUNDER_MEM0_CONFIG names; Mem0's files under the data dir."""
        if settings.mem0_api_key is not None:
            # Its adds are queued (an event id, the memory's id once the event is done).
            raise ValueError("MEM0_API_KEY is Mem0's platform: Mem0PlatformMemory keeps it")
        if settings.mem0_config is None:
            raise ValueError("COFOUNDER_MEM0_CONFIG is not set")
        config = json.loads(settings.mem0_config.read_text())
        home = settings.data_dir.resolve() / "mem0"
        config.setdefault("history_db_path", str(home / "history.db"))
        return cls.from_config(config, home)

    async def add(self, scope: Scope, items: list[NewMemory]) -> list[str]:
        keys = [item.key for item in items]
        removed = await self._tombstones.removed(scope, keys)
        kept = await self._ids_by_key(scope, [key for key in keys if key not in removed])
        ids: list[str] = []
        for item in items:
            if item.key in removed:
                continue
            if item.key not in kept:
                kept[item.key] = await self._add_one(scope, item)
            ids.append(kept[item.key])
        return ids

    async def search(self, scope: Scope, query: str, limit: int) -> list[Memory]:
        if not search_words(query) or limit <= 0:
            return []
        found = await self._memory.search(query, top_k=limit, filters=scope_filters(scope))
        return [row.memory for row in rows_of(scope, found["results"])][:limit]

    async def list(self, scope: Scope, limit: int, offset: int = 0) -> list[Memory]:
        found = await self._memory.get_all(filters=scope_filters(scope), top_k=SCAN_LIMIT)
        rows = sorted(rows_of(scope, found["results"]), key=_age, reverse=True)
        return [row.memory for row in rows[offset : offset + limit]]

    async def delete(self, scope: Scope, memory_id: str) -> None:
        row = await self._get(scope, memory_id)
        # The tombstone first: a delete that fails after it leaves the key removed, and retried
        # it finishes; the other way round a late retry of `add` could bring the memory back.
        await self._tombstones.add(scope, row.key)
        try:
            await self._memory.delete(memory_id)
        except ValueError as e:  # Mem0's "not found": removed meanwhile
            raise MemoryNotFound(memory_id) from e

    async def close(self) -> None:
        await asyncio.to_thread(self._memory.close)
        # Mem0 closes only its history database; qdrant's local mode holds a lock on its path.
        client = getattr(self._memory.vector_store, "client", None)
        if client is not None and hasattr(client, "close"):
            await asyncio.to_thread(client.close)

    async def _ids_by_key(self, scope: Scope, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        filters = {**scope_filters(scope), "key": {"in": [*keys]}}
        found = await self._memory.get_all(filters=filters, top_k=SCAN_LIMIT)
        ids: dict[str, str] = {}
        # Oldest first: should two racing adds have kept one key twice, the first one wins.
        for row in sorted(rows_of(scope, found["results"]), key=_age):
            if row.key in keys:
                ids.setdefault(row.key, row.memory.id)
        return ids

    async def _add_one(self, scope: Scope, item: NewMemory) -> str:
        # Orders memories added within one timestamp's resolution (see `_age`).
        self._seq = max(self._seq + 1, time.time_ns())
        metadata = {
            "key": item.key,
            "kind": item.kind,
            "source": item.source,
            "build_id": item.build_id,
            "seq": self._seq,
        }
        added = await self._memory.add(
            item.text, **scope_filters(scope), metadata=metadata, infer=False
        )
        return str(added["results"][0]["id"])

    async def _get(self, scope: Scope, memory_id: str) -> _Row:
        try:
            uuid.UUID(memory_id)  # Mem0's ids; vector stores refuse anything else
        except ValueError as e:
            raise MemoryNotFound(memory_id) from e
        found = await self._memory.get(memory_id)
        row = parse_row(scope, found) if found else None
        if row is None:
            raise MemoryNotFound(memory_id)
        return row


def rows_of(scope: Scope, results: list[dict[str, Any]]) -> list[_Row]:
    """Those of Mem0's results that are the scope's own."""
    rows = [row for row in (parse_row(scope, r) for r in results) if row is not None]
    if len(rows) < len(results):
        # Another scope's, or not ours at all: a filter that did not hold.
        log.warning("mem0_results_dropped", dropped=len(results) - len(rows))
    return rows


def _age(row: _Row) -> tuple[Any, int]:
    return row.memory.created_at, row.seq
