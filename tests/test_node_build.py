"""A Node.js build end to end (real dev server, worker, offline model, bubblewrap, node and git),
and the offline model's Node.js project checked against the real node test runner."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.llm_tools import PlanOutput
from activities.sandbox.projects import parse_counts
from cofounder.offline_model import node
from cofounder.payloads import BuildStatus, TestReport
from cofounder.settings import Settings
from tests.helpers import GOAL, activity_types, inject_faults, start_build
from tests.processes import demo_git

NODE_GOAL = "A Node.js library that turns titles into URL slugs"


def results_of(history: WorkflowHistory, activity: str) -> list[Any]:
    """The decoded result of every completed `activity` in the history, in order."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        json.loads(done.result.payloads[0].data)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and scheduled[(done := e.activity_task_completed_event_attributes).scheduled_event_id]
        == activity
    ]


def npm_test(folder: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for path, content in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(content)
    command = node.NPM_TEST.split()
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("goal", "wanted"),
    [
        (NODE_GOAL, True),
        ("slugs for nodejs", True),
        ("URL slugs in JavaScript", True),
        ("a NODE cli", True),
        (GOAL, False),
        ("a graph of nodes", False),
        ("a TypeScript library", False),
    ],
)
def test_which_goals_are_node_ones(goal: str, wanted: bool) -> None:
    assert node.wanted(goal) is wanted


def test_the_plan_is_a_valid_node_plan() -> None:
    plan = PlanOutput.model_validate(node.plan(NODE_GOAL))
    assert plan.test_command == "npm test --silent" and plan.dependencies == []
    assert {"index.js", "package.json", "test/slugify.test.js"} <= set(plan.files)
    assert node.FIXED not in json.dumps(node.plan(NODE_GOAL))  # the reviewer reads the plan


def test_the_real_node_log_of_the_first_attempt_gives_the_diagnosis(tmp_path: Path) -> None:
    buggy = npm_test(tmp_path, node.project_files(NODE_GOAL, fixed=False))
    assert buggy.returncode != 0
    passed, failed = parse_counts(buggy.stdout.encode())
    assert (passed, failed) == (5, 1)
    found = node.diagnosis(f"Goal: {NODE_GOAL}\n\n{node.LOG_HEADING}\n{buggy.stdout}")
    assert "not collapsed" in found["summary"] and "'hello---world'" in found["summary"]
    # Read from the log: another wrong value gives another diagnosis, no log none at all.
    other = buggy.stdout.replace("actual: 'hello---world'", "actual: 'helloworld'")
    assert "'helloworld'" in node.diagnosis(other)["summary"]
    assert "no failed assertion" in node.diagnosis("1..0\n# pass 0\n# fail 0")["summary"]

    fixed = npm_test(tmp_path, node.project_files(NODE_GOAL, fixed=True))
    assert fixed.returncode == 0 and parse_counts(fixed.stdout.encode()) == (6, 0)


def test_the_reviewer_approves_only_the_fix() -> None:
    assert node.review(node.project_files(NODE_GOAL, fixed=True)["index.js"])["approved"]
    assert not node.review(node.project_files(NODE_GOAL, fixed=False)["index.js"])["approved"]


async def test_a_node_build_debugs_once_then_publishes(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, tmp_path: Path
) -> None:
    handle = await start_build(env.client, settings, sessions, goal=NODE_GOAL)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED and view.attempt == 3
    assert view.pull_request is not None

    history = await handle.fetch_history()
    kinds = activity_types(history)
    assert kinds.count("run_tests") == 3 and kinds.count("debug") == 1
    first, last, _ = [TestReport.model_validate(r) for r in results_of(history, "run_tests")]
    assert not first.passed and first.failed_count > 0 and first.passed_count > 0
    assert last.passed and last.failed_count == 0
    assert last.passed_count == first.passed_count + first.failed_count
    [diagnosis] = results_of(history, "debug")
    assert "not collapsed" in diagnosis["summary"]

    # The published branch is the Node.js project with the fix, and its own tests pass.
    branch = view.pull_request.branch
    tree = demo_git(settings, "ls-tree", "-r", "--name-only", branch).split()
    assert {"package.json", "index.js", "test/slugify.test.js"} <= set(tree)
    index = demo_git(settings, "show", f"{branch}:index.js")
    assert node.FIXED in index and node.BUGGY not in index
    manifest = json.loads(demo_git(settings, "show", f"{branch}:package.json"))
    assert manifest["scripts"] == {"test": "node --test"} and "dependencies" not in manifest
    published = {path: demo_git(settings, "show", f"{branch}:{path}") for path in tree}
    assert npm_test(tmp_path / "checkout", published).returncode == 0


async def test_a_bad_tool_call_in_a_node_build_is_answered_and_the_build_goes_on(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"malformed": True, "role": "coder"})
    handle = await start_build(env.client, settings, sessions, goal=NODE_GOAL)
    assert (await handle.result()).status == BuildStatus.SUCCEEDED
