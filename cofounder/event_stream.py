"""Following a build's server-sent events (`GET /api/builds/{id}/events`) from the CLI: each
event once and in order, across dropped connections and a restarting API (the stream resumes
after the last event seen, with `Last-Event-ID`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

# Longer than the API's 15 s keep-alive: a silent stream this long is a lost connection.
READ_TIMEOUT = 45.0
RECONNECT_SECONDS = 1.0


class StreamRefused(RuntimeError):
    """The API answered the stream with an error (not the build's, no such build, bad input);
    the message is the API's."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class BuildEvent:
    id: int | None  # None for `end`, which ends the stream
    kind: str
    data: dict[str, Any]


def build_events(
    http: httpx.Client, build_id: str, until: str = "settled", patience: float = 30.0
) -> Iterator[BuildEvent]:
    """The build's events from the first until `end`; a connection that drops or an API that
    is briefly away (up to `patience` seconds without an answer) is reconnected after the
    last event seen."""
    url = f"/api/builds/{build_id}/events"
    last: int | None = None
    failing_since: float | None = None
    while True:
        headers = {} if last is None else {"Last-Event-ID": str(last)}
        try:
            for event in _connection(http, url, until, headers):
                failing_since = None
                yield event
                if event.kind == "end":
                    return
                if event.id is not None:
                    last = event.id
        except (httpx.TransportError, SSEError):
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > patience:
                raise
        time.sleep(RECONNECT_SECONDS)


def _connection(
    http: httpx.Client, url: str, until: str, headers: dict[str, str]
) -> Iterator[BuildEvent]:
    timeout = httpx.Timeout(http.timeout.connect, read=READ_TIMEOUT)
    params = {"until": until}
    with connect_sse(http, "GET", url, params=params, headers=headers, timeout=timeout) as source:
        answer = source.response
        if answer.status_code in (502, 503, 504):
            raise httpx.TransportError(f"the API answered {answer.status_code}")
        if answer.status_code >= 400:
            answer.read()
            raise StreamRefused(_detail(answer), answer.status_code)
        for sse in source.iter_sse():
            if not sse.data:
                continue  # a block that only sets the reconnection delay
            yield BuildEvent(
                id=int(sse.id) if sse.id else None, kind=sse.event, data=json.loads(sse.data)
            )


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail"))
    except ValueError:
        return answer.text[:500]
