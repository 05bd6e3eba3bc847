"""Following a build through the API: the live progress lines of `cofounder build --wait`, and
the plan a build shows when it awaits approval."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from httpx_sse import SSEError

from cofounder.event_stream import BuildEvent, StreamRefused, build_events

# Where following a build stops: it ended, or its first pass did (its pull request is in review).
SETTLED = {"succeeded", "in_review", "merged", "closed", "expired", "failed", "cancelled"}
# The endings that are a success: the code is in a pull request (or already merged).
SUCCEEDED = {"succeeded", "in_review", "merged"}
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
        if response.status_code == 204:  # done, nothing to say (a DELETE)
            return {}
        result: dict[str, Any] = response.json()
        return result

    def start(self, project: str, goal: str, require_approval: bool = False) -> dict[str, Any]:
        body = {"project": project, "goal": goal, "require_approval": require_approval}
        return self._call("POST", "/api/builds", json=body)

    def get(self, build_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/builds/{build_id}")

    def pull_request(self, build_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/builds/{build_id}/pull-request")

    def plan(self, build_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/builds/{build_id}/plan")

    def approve(self, build_id: str, approved: bool, comment: str = "") -> dict[str, Any]:
        body = {"approved": approved, "comment": comment}
        return self._call("POST", f"/api/builds/{build_id}/approve", json=body)

    def merge(self, build_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/builds/{build_id}/pull-request/merge")

    def close(self, build_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/builds/{build_id}/pull-request/close")

    def feedback(self, build_id: str, text: str) -> dict[str, Any]:
        return self._call("POST", f"/api/builds/{build_id}/feedback", json={"body": text})

    def memories(self, project: str, query: str = "") -> list[dict[str, Any]]:
        params = {"q": query} if query else {}
        found = self._call("GET", f"/api/projects/{project}/memories", params=params)
        return list(found["memories"])

    def forget(self, project: str, memory_id: str) -> None:
        self._call("DELETE", f"/api/projects/{project}/memories/{memory_id}")


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


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan, readably: title, summary, numbered steps, files, test command, estimated cost."""
    lines = [f"plan: {plan['title']}"]
    if plan.get("summary"):
        lines += _wrapped(plan["summary"], "  ")
    lines.append("steps:")
    for number, step in enumerate(plan.get("steps", []), 1):
        lines += _wrapped(step["title"], f"  {number}. ", "     ")
        if step.get("description"):
            lines += _wrapped(step["description"], "     ")
    lines.append("files:")
    lines += [f"  {name}" for name in plan.get("files", [])]
    test_command = plan.get("test_command") or "the project's own (pytest, or npm test)"
    lines.append(f"test command: {test_command}")
    cost = plan.get("estimated_cost_usd")
    lines.append(f"estimated cost: {'not estimated' if cost is None else f'${cost:.4f}'}")
    return lines


def merge_line(build_id: str, pr: dict[str, Any]) -> str:
    """What a merge did: main fast-forwarded to the build's branch, or a merge commit."""
    sha = str(pr.get("merge_commit_sha") or "")
    how = "fast-forward to" if sha == pr["head_sha"] else "merge commit"
    return (
        f"build {build_id}: pull request #{pr['id']} ({pr['branch']}) merged into "
        f"{pr['base']}, {how} {sha[:12]}"
    )


def approve_lines(build_id: str) -> list[str]:
    """The commands that decide a plan awaiting approval."""
    return [
        f"approve: cofounder approve {build_id}",
        f"reject:  cofounder approve {build_id} --reject --comment 'why'",
    ]


def _wrapped(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(
        text, 88, initial_indent=first, subsequent_indent=first if rest is None else rest
    ) or [first.rstrip()]


def _show_plan(api: BuildsApi, build_id: str, say: Callable[[str], None]) -> None:
    """Print a build's plan awaiting approval and the commands that decide it."""
    try:
        lines = plan_lines(api.plan(build_id))
    except ApiError as err:
        lines = [f"(the plan could not be read: {err}; try `cofounder plan {build_id}`)"]
    for line in [*lines, *approve_lines(build_id)]:
        say(f"    {line}")


def describe(event: dict[str, Any]) -> str:
    """One progress line: the phase, the test attempt, and the error, if any."""
    status = event["status"]
    line = status.replace("_", " ")
    if status in ("testing", "debugging") and event.get("attempt"):
        line += f" (attempt {event['attempt']})"
    if event.get("error"):
        line += f": {event['error']}"
    return line


def follow(api: BuildsApi, build_id: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Print every phase change as the build's event stream tells it, until the build settles
    (ends, or is in review with its pull request open); return the build as it is then.

    A settling phase is printed once the stream ends after it: should an operator reset the
    build, its new run's phases come next and supersede it (the stream goes on while the
    workflow runs again).
    """
    started = datetime.now(UTC)
    held: dict[str, Any] | None = None
    for event in _events(api, build_id, "settled"):
        if event.kind != "phase":
            continue
        held = None  # a later phase: whatever was held was not the end
        if event.data["status"] in SETTLED:
            held = event.data
            continue
        say(_phase_line(event.data, started))
        if event.data["status"] == "awaiting_approval":
            # Only a gate still waiting is worth the plan and a command; a past one is history.
            if _get_patiently(api, build_id)["status"] == "awaiting_approval":
                _show_plan(api, build_id, say)
    if held is not None:
        say(_phase_line(held, started))
    return _get_patiently(api, build_id)


def _phase_line(phase: dict[str, Any], started: datetime) -> str:
    at = datetime.fromisoformat(phase["at"].replace("Z", "+00:00"))
    elapsed = max(0.0, (at - started).total_seconds())
    return f"  [{elapsed:6.1f}s] ${phase['cost_usd']:.4f}  {describe(phase)}"


def _events(api: BuildsApi, build_id: str, until: str) -> Iterator[BuildEvent]:
    """The build's event stream, its failures worded as the API's other answers are."""
    try:
        yield from build_events(api.http, build_id, until, UNAVAILABLE_PATIENCE)
    except StreamRefused as err:
        raise ApiError(str(err), err.status_code) from None
    except (httpx.TransportError, SSEError) as err:
        raise ApiError(
            f"lost the event stream of build {build_id} at {api.http.base_url} ({err}); "
            "is `cofounder dev` running?"
        ) from err


def follow_iteration(
    api: BuildsApi, build_id: str, after: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Print the build's phases from its review iteration numbered past `after` until that
    iteration is published and the build is back in review (or it ended); return the
    iteration (empty when the build ended)."""
    started: int | None = None
    published = False
    for event in _events(api, build_id, "ended"):
        if event.kind == "iteration" and event.data["number"] > after:
            started = started or event.data["number"]
            published = published or event.data["state"] == "ended"
        elif event.kind == "phase" and started is not None:
            status = event.data["status"]
            say(f"  {describe(event.data)}")
            if status in SETTLED - {"in_review"} or (published and status == "in_review"):
                break
    build = _get_patiently(api, build_id)
    if build["status"] != "in_review":
        return {}
    done = [it for it in build.get("iterations", []) if it["number"] > after]
    return next((it for it in done if it["status"] != "running"), {})


def iteration_line(iteration: dict[str, Any]) -> str:
    """What an iteration did, in one line."""
    head = f" → {iteration['head_sha'][:12]}" if iteration.get("head_sha") else ""
    line = f"iteration {iteration['number']} {iteration['status']}{head}"
    line += f" ${iteration['cost']['usd']:.4f}: {iteration['feedback']}"
    if iteration.get("error"):
        line += f" ({iteration['error']})"
    if iteration.get("reply_url"):
        line += f"\n  reply: {iteration['reply_url']}"
    return line
