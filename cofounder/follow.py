"""Following a build through the API: the live progress lines of `cofounder build --wait`, and
the plan a build shows when it awaits approval."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

# Where following a build stops: it ended, or its first pass did (its pull request is in review).
SETTLED = {"succeeded", "in_review", "merged", "closed", "expired", "failed", "cancelled"}
# The endings that are a success: the code is in a pull request (or already merged).
SUCCEEDED = {"succeeded", "in_review", "merged"}
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


def follow(
    api: BuildsApi, build_id: str, say: Callable[[str], None], interval: float = 0.25
) -> dict[str, Any]:
    """Print every phase change, in order, until the build settles (ends, or is in review with
    its pull request open); return the build as it is then.

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
            say(f"  [{elapsed:6.1f}s] ${event['cost_usd']:.4f}  {describe(event)}")
            # Only a gate still waiting is worth the plan and a command; a past one is history.
            if event["status"] == "awaiting_approval" and build["status"] == "awaiting_approval":
                _show_plan(api, build_id, say)
        if build["status"] not in SETTLED:
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
    return event["status"] in SETTLED and same_run


def follow_iteration(
    api: BuildsApi, build_id: str, after: int, say: Callable[[str], None], interval: float = 0.25
) -> dict[str, Any]:
    """Print the build's phases until its review session has published an iteration numbered
    past `after` (or the build ended); return that iteration (empty when the build ended)."""
    last = None
    while True:
        build = _get_patiently(api, build_id)
        if build["status"] != last:
            last = build["status"]
            say(f"  {describe({'status': last})}")
        newer = [it for it in build.get("iterations", []) if it["number"] > after]
        done = [it for it in newer if it["status"] != "running"]
        if done and build["status"] == "in_review":
            return done[0]
        if build["status"] in SETTLED - {"in_review"}:
            return {}
        time.sleep(interval)


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
