"""The project-memory demo: a project's second build recalls what its first decided, and its
plan says so. Runs against a running stack (`cofounder dev`) through the API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from cofounder.follow import SUCCEEDED, ApiError, BuildsApi, follow

FIRST_GOAL = (
    "A small Python library that turns any title into a URL slug, with pytest tests. "
    "We use pytest, and no new dependencies."
)
SECOND_GOAL = "Add a max_length option to slugify, cutting at a separator"
PLAN_PATIENCE = 120.0  # seconds the second build may take to reach its plan


class DemoFailed(RuntimeError):
    """The demo did not show what it is for; the message says what went wrong."""


def run_memory_demo(api: BuildsApi, say: Callable[[str], None], project: str = "") -> str:
    """Two builds of a fresh project; returns the second's plan summary, which cites a
    decision of the first. DemoFailed when either build fails or the plan cites nothing."""
    project = project or f"memory-demo-{uuid.uuid4().hex[:6]}"
    first = api.start(project, FIRST_GOAL)
    say(f"\nfirst build {first['id']}: {FIRST_GOAL}")
    first = _settled(api, say, first, "first")
    api.merge(first["id"])  # the second build starts from the first's code
    say(f"\nwhat project {project} remembers after build {first['id']}:")
    for memory in api.memories(project):
        say(f"  - {memory['kind']} ({memory['source']}): {memory['text'][:110]}")
    second = api.start(project, SECOND_GOAL, require_approval=True)
    say(f"\nsecond build {second['id']}: {SECOND_GOAL}")
    _await_plan(api, second["id"])
    summary = str(api.plan(second["id"])["summary"])
    say(f"its plan: {summary}")
    if f"build {first['id']}" not in summary:
        raise DemoFailed(f"the second build's plan cites nothing of build {first['id']}")
    api.approve(second["id"], True)
    _settled(api, say, second, "second")
    return summary


def _settled(
    api: BuildsApi, say: Callable[[str], None], build: dict[str, Any], which: str
) -> dict[str, Any]:
    final = follow(api, build["id"], say)
    if final["status"] not in SUCCEEDED:
        raise DemoFailed(f"the {which} build ended {final['status']}: {final.get('error')}")
    return final


def _await_plan(api: BuildsApi, build_id: str) -> None:
    deadline = time.monotonic() + PLAN_PATIENCE
    while (status := api.get(build_id)["status"]) != "awaiting_approval":
        if status in SUCCEEDED or time.monotonic() > deadline:
            raise DemoFailed(f"build {build_id} never showed its plan (status: {status})")
        time.sleep(0.5)


__all__ = ["ApiError", "DemoFailed", "run_memory_demo"]
