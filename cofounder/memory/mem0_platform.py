"""Project memory on Mem0's hosted platform (MEM0_API_KEY at MEM0_HOST), via `AsyncMemoryClient`.

Scoped as the open-source store is (`user_id` the owner, `agent_id` the project), owner and
project in each memory's metadata too (listings may leave entity ids out); every answer is
checked against the scope again. Items are kept verbatim (`infer=False`). Adds are queued: the
memory's id comes from the add's event (`GET /v1/event/{id}/`), polled for a bounded time.

Removed keys (tombstones) live on the platform, not on one machine, so every worker sees them: a
memory holding only the key in a namespace of its own (`app_id` cofounder-removed; memories are
in cofounder). Searches and listings name the memories' namespace, so a tombstone is never
recalled or listed, and it keeps nothing of the removed memory's text.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from activities.errors import BadRequest, CofounderError, NotAuthorized, RateLimited, Unavailable
from cofounder.memory.mem0 import load_mem0
from cofounder.memory.model import Memory, MemoryNotFound, NewMemory, Scope, search_words

if TYPE_CHECKING:
    from mem0 import AsyncMemoryClient

    from cofounder.settings import Settings

log = structlog.get_logger()

APP_ID, REMOVED_APP_ID = "cofounder", "cofounder-removed"  # memories', tombstones' namespaces
PAGE_SIZE = 200  # the most one page of `POST /v3/memories/` holds
SCAN_PAGES = 50  # listing sorts the scope itself: at most PAGE_SIZE * SCAN_PAGES memories
ADD_TIMEOUT = 60.0  # seconds an add may stay queued before it counts as failed
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, order=True)
class Row:
    age: tuple[datetime, int]  # created_at, then our own sequence within one timestamp
    id: str
    key: str = field(compare=False)
    memory: Memory | None = field(compare=False)  # None: a tombstone


class Mem0PlatformMemory:
    """A MemoryStore over Mem0's hosted platform. The SDK's client (whose construction pings
    the platform with blocking `requests`) is made in a thread on first use."""

    def __init__(self, api_key: SecretStr, host: str, home: Path | None = None, **timeouts: float):
        self._key, self._host, self._home = api_key, host.rstrip("/"), home
        self._add_timeout = timeouts.pop("add_timeout", ADD_TIMEOUT)
        self._request_timeout = timeouts.pop("request_timeout", REQUEST_TIMEOUT)
        self._client: AsyncMemoryClient | None = None
        self._connecting = asyncio.Lock()
        self._seq = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Mem0PlatformMemory:
        """With MEM0_API_KEY at MEM0_HOST; Mem0's own files (MEM0_DIR) under the data dir."""
        if settings.mem0_api_key is None:
            raise ValueError("MEM0_API_KEY is not set")
        home = settings.data_dir.resolve() / "mem0"
        return cls(settings.mem0_api_key, settings.mem0_host, home=home)

    async def add(self, scope: Scope, items: list[NewMemory]) -> list[str]:
        kept, removed = await self._by_key(scope, [item.key for item in items])
        ids: list[str] = []
        for item in items:
            if item.key in removed:
                continue
            if item.key not in kept:
                kept[item.key] = await self._add_one(scope, item.key, item)
            ids.append(kept[item.key])
        return ids

    async def search(self, scope: Scope, query: str, limit: int) -> list[Memory]:
        if not search_words(query) or limit <= 0:
            return []
        client = await self._sdk()
        with self._mapped("search"):
            found = await client.search(query, filters=_filters(scope), top_k=min(limit, 1000))
        return [row.memory for row in rows_of(scope, found["results"]) if row.memory][:limit]

    async def list(self, scope: Scope, limit: int, offset: int = 0) -> list[Memory]:
        rows = sorted(rows_of(scope, await self._scan(_filters(scope))), reverse=True)
        return [row.memory for row in rows if row.memory][offset : offset + limit]

    async def delete(self, scope: Scope, memory_id: str) -> None:
        try:
            uuid.UUID(memory_id)  # the platform's ids; it refuses anything else with a 400
        except ValueError as e:
            raise MemoryNotFound(memory_id) from e
        client = await self._sdk()
        with self._mapped("get", not_found=memory_id):
            rows = rows_of(scope, [await client.get(memory_id)])
        if not rows or rows[0].memory is None:
            raise MemoryNotFound(memory_id)
        # The tombstone first (and finished): a delete that fails after it leaves the key
        # removed; the other way round a late retry of `add` could bring the memory back.
        await self._add_one(scope, rows[0].key, None)
        with self._mapped("delete", not_found=memory_id):
            await client.delete(memory_id)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.async_client.aclose()
            self._client = None

    async def _sdk(self) -> AsyncMemoryClient:
        async with self._connecting:
            if self._client is None:
                self._client = await self._connect()
        return self._client

    async def _connect(self) -> AsyncMemoryClient:
        http = httpx.AsyncClient(timeout=self._request_timeout)
        key, host = self._key.get_secret_value(), self._host

        def make() -> AsyncMemoryClient:  # importing mem0 and its ping both block: a thread
            return load_mem0(self._home).AsyncMemoryClient(api_key=key, host=host, client=http)

        try:
            # The SDK's ping has no timeout of its own: a hung one is left to its thread.
            return await asyncio.wait_for(asyncio.to_thread(make), self._request_timeout)
        except (OSError, TimeoutError) as err:  # requests' errors are OSErrors
            await http.aclose()
            said = f"Mem0 at {host} is unreachable ({type(err).__name__})"
            raise Unavailable(said, type_name=type(err).__name__) from None
        except ValueError as err:  # refused: the context is the ping's requests.HTTPError
            await http.aclose()
            status = getattr(getattr(err.__context__, "response", None), "status_code", None)
            said = f"Mem0 at {host} refused MEM0_API_KEY (HTTP {status}): {err}"
            raise _kind(status or 401)(self._redact(said), type_name="ValueError") from None

    async def _add_one(self, scope: Scope, key: str, item: NewMemory | None) -> str:
        """Adds one memory (or, without an item, a tombstone for `key`) and waits for it."""
        # Orders memories added within one timestamp's resolution (see `Row.age`).
        self._seq = max(self._seq + 1, time.time_ns())
        meta: dict[str, Any] = {"owner": scope.owner, "project": scope.project, "key": key}
        meta["seq"] = self._seq
        text, app_id = f"removed: {key}", REMOVED_APP_ID
        if item is None:
            meta["removed"] = True
        else:
            text, app_id = item.text, APP_ID
            meta |= {"kind": item.kind, "source": item.source, "build_id": item.build_id}
        client = await self._sdk()
        entities = {"user_id": scope.owner, "agent_id": scope.project, "app_id": app_id}
        with self._mapped("add"):
            added = await client.add(text, **entities, metadata=meta, infer=False)
            results = await self._finished(client, added)
        ids = [str(r["id"]) for r in results if isinstance(r, dict) and r.get("id")]
        if ids:
            return ids[0]
        # The event's results are loosely documented: failing an id, find it by its key.
        kept, removed = await self._by_key(scope, [key])
        found = (kept if item else removed).get(key)
        if found is None:
            raise Unavailable(f"Mem0 finished adding a memory but does not list it (key {key})")
        return found

    async def _finished(self, client: AsyncMemoryClient, added: dict[str, Any]) -> Sequence[Any]:
        """The results of a queued add, once its event succeeded; bounded by add_timeout."""
        if added.get("status") == "SUCCEEDED":  # documented for direct imports: at once
            return added.get("results") or ()
        event_id = str(added.get("event_id") or "")
        if not event_id:
            raise Unavailable(self._redact(f"Mem0 queued an add without an event id: {added}"))
        deadline, delay = time.monotonic() + self._add_timeout, 0.02
        while True:
            response = await client.async_client.get(f"/v1/event/{quote(event_id, safe='')}/")
            response.raise_for_status()
            event = response.json()
            if event.get("status") == "SUCCEEDED":
                return event.get("results") or ()
            if event.get("status") == "FAILED":
                raise Unavailable(self._redact(f"Mem0 add {event_id} failed: {event.get('error')}"))
            if time.monotonic() + delay > deadline:
                raise Unavailable(
                    f"Mem0 did not finish adding a memory within {self._add_timeout:g}s "
                    f"(event {event_id} still {event.get('status')})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _by_key(self, scope: Scope, keys: Sequence[str]) -> tuple[dict[str, str], ...]:
        """The scope's kept memories and tombstones by key (the oldest of a key added twice)."""
        if not keys:
            return {}, {}
        filters = _filters(scope, {"in": [APP_ID, REMOVED_APP_ID]})
        # Metadata filters take only equality: one clause per key.
        filters["AND"].append({"OR": [{"metadata": {"key": key}} for key in keys]})
        kept: dict[str, str] = {}
        removed: dict[str, str] = {}
        for row in sorted(rows_of(scope, await self._scan(filters), True)):
            if row.key in keys:
                (kept if row.memory else removed).setdefault(row.key, row.id)
        return kept, removed

    async def _scan(self, filters: dict[str, Any]) -> Sequence[dict[str, Any]]:
        client = await self._sdk()
        results: Sequence[dict[str, Any]] = ()
        with self._mapped("list"):
            for page in range(1, SCAN_PAGES + 1):
                found = await client.get_all(filters=filters, page=page, page_size=PAGE_SIZE)
                results = (*results, *found["results"])
                if not found.get("next"):
                    break
        return results

    @contextmanager
    def _mapped(self, doing: str, not_found: str | None = None) -> Iterator[None]:
        """Mem0's errors (and httpx's, from the event polls) as ours; never with the key."""
        from mem0.exceptions import MemoryError as Mem0Error  # loaded by `_sdk` by now

        try:
            yield
        except (Mem0Error, httpx.HTTPError) as err:
            if isinstance(err, httpx.HTTPStatusError):
                status, detail = err.response.status_code, err.response.text
            elif isinstance(err, Mem0Error):
                status, detail = err.debug_info.get("status_code"), err.message
            else:
                status, detail = None, str(err)
            if not_found is not None and status in (400, 404):
                raise MemoryNotFound(not_found) from None
            what = f"HTTP {status}" if status else type(err).__name__
            said = self._redact(f"Mem0 {doing} failed ({what}): {detail}")[:500]
            retry = err.debug_info.get("retry_after") if isinstance(err, Mem0Error) else None
            raise _kind(status)(said, retry_after=retry, type_name=type(err).__name__) from None

    def _redact(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text


def _filters(scope: Scope, app_id: Any = APP_ID) -> dict[str, Any]:
    """Mem0's v2 filters for a scope's memories (infer=False keeps both entity ids)."""
    return {"AND": [{"user_id": scope.owner}, {"agent_id": scope.project}, {"app_id": app_id}]}


def parse_row(scope: Scope, result: dict[str, Any]) -> Row | None:
    """One of Mem0's results as ours; None when it is not the scope's, or not one we wrote."""
    meta = result.get("metadata") or {}
    if (meta.get("owner"), meta.get("project")) != (scope.owner, scope.project):
        return None
    for entity, want in (("user_id", scope.owner), ("agent_id", scope.project)):
        if result.get(entity) not in (None, want):  # listings may leave them out
            return None
    removed = meta.get("removed") is True
    if result.get("app_id") not in (None, REMOVED_APP_ID if removed else APP_ID):
        return None
    try:
        created = datetime.fromisoformat(result["created_at"])
        row = Row((created, int(meta.get("seq") or 0)), str(result["id"]), str(meta["key"]), None)
        if removed:
            return row
        about = {"kind": meta["kind"], "source": meta["source"], "build_id": meta.get("build_id")}
        memory = Memory(id=row.id, text=result["memory"], created_at=created, **about)
        return replace(row, memory=memory.model_copy(update={"score": result.get("score")}))
    except (KeyError, TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def rows_of(scope: Scope, results: Sequence[dict[str, Any]], tombstones: bool = False) -> list[Row]:
    """Those of Mem0's results that are the scope's own (its tombstones only if asked)."""
    rows = [row for row in (parse_row(scope, r) for r in results) if row is not None]
    rows = [row for row in rows if tombstones or row.memory is not None]
    if len(rows) < len(results):
        # Another scope's, a tombstone where none belongs, or not ours: a filter did not hold.
        log.warning("mem0_results_dropped", dropped=len(results) - len(rows))
    return rows


def _kind(status: int | None) -> type[CofounderError]:
    """Ours for an HTTP status: refused keys and bad requests are not retried; the rest is."""
    if status in (401, 403):
        return NotAuthorized
    if status == 429:
        return RateLimited
    return BadRequest if status and 400 <= status < 500 and status != 408 else Unavailable
