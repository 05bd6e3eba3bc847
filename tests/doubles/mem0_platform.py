"""A local double of Mem0's hosted platform API, for exercising the real `mem0ai` SDK's
`AsyncMemoryClient` offline: exactly the endpoints our store calls, behind
`Authorization: Token <key>` (401 otherwise, as the SDK's ping expects).

Shapes follow Mem0's OpenAPI (docs/openapi.json in mem0ai/mem0): `GET /v1/ping/`,
`POST /v3/memories/add/` (queued: an event id), `GET /v1/event/{id}/`, `POST /v3/memories/`
(filters in the body, page and page_size in the query), `POST /v3/memories/search/`, and
`GET`/`DELETE /v1/memories/{id}/`. Filters are evaluated as the v2 filter docs describe: AND,
OR, NOT, sibling keys ANDed, entity ids by value or `in`, metadata by bare value only.

Guessed, not documented: the items of a finished event's `results` (the docs say only "array");
the double answers the add response's documented item, {"id", "event": "ADD", "data":
{"memory"}}, or none with `event_ids=False`. With `queued=False` an add answers at once, as the
OpenAPI says a direct import (infer=false) may. Listings leave out user_id and agent_id, as a
colleague saw the platform do.

    with Mem0PlatformDouble(event_polls=2) as double:
        client = AsyncMemoryClient(api_key=double.api_key, host=double.url)
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import ServerThread

API_KEY = "m0-test-double-8f3a1c5e9b7d2f46"
ENTITIES = ("user_id", "agent_id", "app_id", "run_id")
_FIELDS = {"AND", "OR", "NOT", "metadata", *ENTITIES}
_UUID = r"[0-9a-f-]{36}"
_WORD = re.compile(r"[^\W_]+")
THRESHOLD = 0.1  # the search's documented default minimum score


class FilterError(ValueError):
    """A filter the platform refuses (400)."""


class Mem0PlatformDouble:
    """Mem0's platform for one API key; use it as a context manager (it serves itself). An add
    finishes after `event_polls` reads of its event (or `finish_pending`); `fail` answers a
    route's next call with an HTTP status, e.g. fail["GET /v1/event/{id}/"] = 503."""

    def __init__(
        self,
        api_key: str = API_KEY,
        event_polls: int = 1,
        queued: bool = True,
        event_ids: bool = True,
    ) -> None:
        self.api_key, self.event_polls = api_key, event_polls
        self.queued, self.event_ids = queued, event_ids
        self.fail: dict[str, int] = {}
        self.memories: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        route = Route("/{path:path}", self._serve, methods=["GET", "POST", "DELETE"])
        self._server = ServerThread(Starlette(routes=[route]))

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> Mem0PlatformDouble:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    async def _serve(self, request: Request) -> JSONResponse:
        route = f"{request.method} {re.sub(_UUID, '{id}', request.url.path)}"
        body = await request.json() if request.method == "POST" else {}
        with self._lock:
            self.requests[route] += 1
            if request.headers.get("authorization") != f"Token {self.api_key}":
                return JSONResponse({"detail": "Invalid API key."}, status_code=401)
            status = self.fail.pop(route, None)
            if status is not None:
                return JSONResponse({"detail": f"Injected failure {status}"}, status_code=status)
            try:
                return self._answer(route, request, body)
            except FilterError as e:
                return JSONResponse({"error": str(e)}, status_code=400)

    def _answer(self, route: str, request: Request, body: dict[str, Any]) -> JSONResponse:
        ident = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if route == "GET /v1/ping/":
            ping = {"status": "ok", "org_id": "org-1", "project_id": "proj-1"}
            return JSONResponse({**ping, "user_email": "founder@example.com"})
        if route == "POST /v3/memories/add/":
            return self._add(body)
        if route == "GET /v1/event/{id}/" and ident in self.events:
            return JSONResponse(self._poll(self.events[ident]))
        if route == "POST /v3/memories/":
            return self._list(body, int(request.query_params.get("page", 1)), request)
        if route == "POST /v3/memories/search/":
            return self._search(body)
        if route in ("GET /v1/memories/{id}/", "DELETE /v1/memories/{id}/"):
            if ident not in self.memories:
                return JSONResponse({"error": "Memory not found!"}, status_code=404)
            if request.method == "GET":
                return JSONResponse(self.memories[ident])
            del self.memories[ident]
            return JSONResponse({"message": "Memory deleted successfully!"})
        return JSONResponse({"detail": f"Not found: {route}"}, status_code=404)

    def _add(self, body: dict[str, Any]) -> JSONResponse:
        scope = {field: body.get(field) for field in ENTITIES}
        messages = body.get("messages") or []
        if not any(scope.values()) or not messages or body.get("infer") is not False:
            # Inference would call an LLM: the double only stores verbatim (infer=False).
            raise FilterError("Invalid input data: messages, an entity id and infer=false")
        event_id = str(uuid.uuid4())
        self.events[event_id] = {"id": event_id, "polls": 0, "payload": body, "scope": scope}
        if not self.queued:
            done = {"status": "SUCCEEDED", "results": self._complete(self.events[event_id])}
            return JSONResponse({"message": "Memories added", "event_id": event_id, **done})
        message = "Memory processing has been queued for background execution"
        return JSONResponse({"message": message, "status": "PENDING", "event_id": event_id})

    def _poll(self, event: dict[str, Any]) -> dict[str, Any]:
        event["polls"] += 1
        answer = {"id": event["id"], "event_type": "ADD", "payload": event["payload"]}
        if event["polls"] < self.event_polls:
            return {**answer, "status": "PENDING", "results": []}
        results = self._complete(event)
        return {**answer, "status": "SUCCEEDED", "results": results if self.event_ids else []}

    def finish_pending(self) -> None:
        """Completes every queued add, as the platform does in the background."""
        with self._lock:
            for event in self.events.values():
                self._complete(event)

    def _complete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "results" not in event:  # stored once, however often it is read afterwards
            messages = event["payload"]["messages"]
            event["results"] = [self._store(event, m["content"]) for m in messages]
        return list(event["results"])

    def _store(self, event: dict[str, Any], text: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        memory_id = str(uuid.uuid4())
        metadata = event["payload"].get("metadata")
        row = {"id": memory_id, "memory": text, **event["scope"], "metadata": metadata}
        self.memories[memory_id] = {**row, "categories": [], "created_at": now, "updated_at": now}
        return {"id": memory_id, "event": "ADD", "data": {"memory": text}}

    def _list(self, body: dict[str, Any], page: int, request: Request) -> JSONResponse:
        if set(body) & set(ENTITIES):
            raise FilterError("Top-level entity parameters are not supported: use filters")
        size = int(request.query_params.get("page_size", 100))
        found = [m for m in self.memories.values() if matches(m, body.get("filters"))]
        rows = [
            {k: v for k, v in m.items() if k not in ("user_id", "agent_id")}
            for m in found[(page - 1) * size : page * size]
        ]
        more = page * size < len(found)
        following = str(request.url.include_query_params(page=page + 1)) if more else None
        return JSONResponse(
            {"count": len(found), "next": following, "previous": None, "results": rows}
        )

    def _search(self, body: dict[str, Any]) -> JSONResponse:
        query, threshold = body.get("query") or "", body.get("threshold", THRESHOLD)
        if not query.strip():
            raise FilterError("query must not be empty")
        found = [m for m in self.memories.values() if matches(m, body.get("filters"))]
        scored = [{**m, "score": overlap(query, m["memory"])} for m in found]
        ranked = sorted((m for m in scored if m["score"] >= threshold), key=lambda m: -m["score"])
        return JSONResponse({"results": ranked[: int(body.get("top_k", 10))]})


def matches(memory: dict[str, Any], filters: Any) -> bool:
    """Whether a memory passes Mem0's v2 filters; FilterError for a filter it would refuse."""
    if not isinstance(filters, dict) or not filters:
        raise FilterError("filters must be a non-empty object")
    return all(_clause(memory, key, value) for key, value in filters.items())


def _clause(memory: dict[str, Any], key: str, value: Any) -> bool:
    if key not in _FIELDS:
        raise FilterError(f"Top-level key must be a logical operator or an allowed field: {key}")
    if key == "AND":
        return all(matches(memory, item) for item in value)
    if key == "OR":
        return any(matches(memory, item) for item in value)
    if key == "NOT":
        return not any(
            matches(memory, item) for item in (value if isinstance(value, list) else [value])
        )
    if key == "metadata":
        if any(isinstance(v, dict | list) for v in value.values()):
            raise FilterError("metadata filters take bare values (eq) only here")
        meta = memory.get("metadata") or {}
        return all(meta.get(k) == v for k, v in value.items())
    if isinstance(value, dict):
        if set(value) != {"in"}:
            raise FilterError(f"unsupported operator for {key}: {sorted(value)}")
        return memory.get(key) in value["in"]
    return (value == "*" and memory.get(key) is not None) or memory.get(key) == value


def overlap(query: str, text: str) -> float:
    """A crude relevance score in [0, 1]: shared distinct words over their geometric mean."""
    q, t = set(_WORD.findall(query.lower())), set(_WORD.findall(text.lower()))
    return len(q & t) / (len(q) * len(t)) ** 0.5 if q and t else 0.0
