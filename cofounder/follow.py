"""Following a build through the API: the live progress lines of `cofounder build --wait`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "cancelled"}
FINAL_EVENT_GRACE = 10.0  # seconds
UNAVAILABLE_PATIENCE = 30.0  # seconds a follower waits out an unreachable API or database


class ApiError(RuntimeError):
    """The API refused a request or could not be reached; the message is for people."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in detail
        )
    return str(detail)


class BuildsApi:
    """A thin client of the builds API, used by the CLI, `cofounder dev` and the benchmarks."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ApiError(
                f"cannot reach the API at {self.http.base_url} ({err}); is `cofounder dev` running?"
            ) from err
        if response.status_code >= 400:
            raise ApiError(_detail(response), response.status_code)
        result: dict[str, Any] = response.json()
        return result

    def start(self, project: str, goal: str, require_approval: bool = False) -> dict[str, Any]:
        body = {"project": project, "goal": goal, "require_approval": require_approval}
        return self._call("POST", "/api/builds", json=body)

    def get(self, build_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/builds/{build_id}")

    def pull_request(self, build_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/builds/{build_id}/pull-request")

    def approve(self, build_id: str, approved: bool, comment: str = "") -> dict[str, Any]:
        body = {"approved": approved, "comment": comment}
        return self._call("POST", f"/api/builds/{build_id}/approve", json=body)


def _get_patiently(
    api: BuildsApi, build_id: str, patience: float = UNAVAILABLE_PATIENCE
) -> dict[str, Any]:
    """The build; a restarting API or a briefly unavailable database is waited out."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return api.get(build_id)
        except ApiError as err:
            if err.status_code not in (None, 502, 503, 504) or time.monotonic() > deadline:
                raise
        time.sleep(1.0)


def describe(build_id: str, event: dict[str, Any]) -> str:
    """One progress line: the phase, the test attempt, and what to do when it waits on you."""
    status = event["status"]
    line = status.replace("_", " ")
    if status in ("testing", "debugging") and event.get("attempt"):
        line += f" (attempt {event['attempt']})"
    if status == "awaiting_approval":
        line += f"  → cofounder approve {build_id}  (or --reject)"
    if event.get("error"):
        line += f": {event['error']}"
    return line


def follow(
    api: BuildsApi, build_id: str, say: Callable[[str], None], interval: float = 0.25
) -> dict[str, Any]:
    """Print every phase change, in order, until the build ends; return the final build.

    Events are told apart by run and seq, so a build reset by an operator while it is followed
    goes on printing its new run, and an earlier run's ending never stops the follower.
    """
    printed: set[tuple[str, int]] = set()
    ended_polls = 0
    started = datetime.now(UTC)
    while True:
        build = _get_patiently(api, build_id)
        progress = build.get("progress", [])
        for event in progress:
            key = (event.get("run_id", ""), event["seq"])
            if key in printed:
                continue
            printed.add(key)
            at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
            elapsed = max(0.0, (at - started).total_seconds())
            say(f"  [{elapsed:6.1f}s] ${event['cost_usd']:.4f}  {describe(build_id, event)}")
        if build["status"] not in TERMINAL:
            ended_polls = 0
        elif progress and _ends_current_run(build, progress[-1]):
            return build
        else:
            # The live status can run a moment ahead of the recorded progress: wait (briefly)
            # for the final event so the last phase is printed too.
            ended_polls += 1
            if ended_polls * interval > FINAL_EVENT_GRACE:
                return build
        time.sleep(interval)


def _ends_current_run(build: dict[str, Any], event: dict[str, Any]) -> bool:
    current = build.get("run_id")
    same_run = not current or event.get("run_id", current) == current
    return event["status"] in TERMINAL and same_run
