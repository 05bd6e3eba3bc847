"""A build's plan through the API and the CLI: real worker, offline model, real dev server.

The offline model plans the "slugkit" library for any goal, so its plan is known here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from api import plans
from api.deps import User, get_current_user
from api.main import create_app
from api.schemas.plans import PlanOut
from cofounder.cli import app
from cofounder.follow import BuildsApi, follow, plan_lines
from cofounder.offline_model import script
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import inject_faults
from worker import running_worker

runner = CliRunner()
# The API serves from a thread of this process, so its log lines land in the CLI's captured output.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")
GOAL = "a slugify library with tests"
STEPS = script.plan(GOAL)["steps"]
# How the CLI shows them: each title numbered, its description (if any) below it.
STEP_LINES = [
    line
    for n, step in enumerate(STEPS, 1)
    for line in [f"  {n}. {step['title']}", f"     {step.get('description')}"]
    if not line.endswith("None")
]


@pytest.fixture
def api_url(env: WorkflowEnvironment, settings: Settings, sessions: Any) -> Iterator[str]:
    with ServerThread(create_app(settings, client=env.client)) as server:
        yield server.url


@pytest_asyncio.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url) as client:
        yield client


@asynccontextmanager
async def as_another_owner(
    settings: Settings, env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    """The API as another signed-in owner sees it (same database, same Temporal)."""
    other = create_app(settings, client=env.client)
    other.dependency_overrides[get_current_user] = lambda: User(id="someone-else")
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def cli(settings: Settings, api_url: str, *args: str) -> tuple[int, list[str]]:
    """The command's exit code and the lines it printed."""
    env = {"COFOUNDER_API_URL": api_url, "COFOUNDER_DATA_DIR": str(settings.data_dir)}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, [
        line for line in result.output.splitlines() if not LOG_LINE.match(line)
    ]


async def start(http: httpx.AsyncClient, require_approval: bool) -> str:
    body = {"project": "demo", "goal": GOAL, "require_approval": require_approval}
    response = await http.post("/api/builds", json=body)
    assert response.status_code == 202, response.text
    build_id: str = response.json()["id"]
    return build_id


async def wait_for(http: httpx.AsyncClient, build_id: str, *statuses: str) -> None:
    deadline = time.monotonic() + 30
    while (status := (await http.get(f"/api/builds/{build_id}")).json()["status"]) not in statuses:
        assert time.monotonic() < deadline, f"build {build_id} is still {status}"
        await asyncio.sleep(0.1)


async def test_the_plan_reads_at_the_gate_and_after_the_build_ended(
    env: WorkflowEnvironment, settings: Settings, http: httpx.AsyncClient, api_url: str
) -> None:
    async with running_worker(env.client, settings):
        build_id = await start(http, require_approval=True)
        await wait_for(http, build_id, "awaiting_approval")

        response = await http.get(f"/api/builds/{build_id}/plan")
        assert response.status_code == 200, response.text
        plan = response.json()
        assert plan["build_id"] == build_id
        assert plan["title"] == f"slugkit: {GOAL}"
        assert "slugify(text, separator='-')" in plan["summary"]
        assert [step["title"] for step in plan["steps"]] == [step["title"] for step in STEPS]
        assert plan["steps"][1] == {
            "title": STEPS[1]["title"],
            "description": None,
            "files": ["README.md"],
        }
        assert "slugkit/__init__.py" in plan["files"] and "tests/test_slugify.py" in plan["files"]
        test_command = "python3 -m pytest -q -p no:cacheprovider"
        assert (plan["test_command"], plan["estimated_cost_usd"]) == (test_command, 0.05)

        # Another owner asking for this very build learns nothing, not even that it exists.
        async with as_another_owner(settings, env) as other:
            theirs = await other.get(f"/api/builds/{build_id}/plan")
        assert theirs.status_code == 404
        assert theirs.json() == {"detail": f"build {build_id} not found"}

        code, lines = await asyncio.to_thread(cli, settings, api_url, "plan", build_id)
        assert code == 0, lines
        assert lines[0] == f"plan: slugkit: {GOAL}"
        first = f"1. {STEPS[0]['title']}"
        assert [line.strip() for line in lines if line.startswith("  1. ")] == [first]
        assert f"  2. {STEPS[1]['title']}" in lines and "  slugkit/__init__.py" in lines
        assert f"test command: {test_command}" in lines
        assert "estimated cost: $0.0500" in lines
        assert lines[-2] == f"approve: cofounder approve {build_id}"

        rejected = await http.post(f"/api/builds/{build_id}/approve", json={"approved": False})
        assert rejected.status_code == 200, rejected.text
        await wait_for(http, build_id, "cancelled")

        # The ended workflow still names its plan (a worker answers by replaying it).
        after = await http.get(f"/api/builds/{build_id}/plan")
        assert after.status_code == 200, after.text
        assert after.json() == plan
        code, lines = await asyncio.to_thread(cli, settings, api_url, "plan", build_id)
        assert code == 0 and lines[0] == f"plan: slugkit: {GOAL}"
        assert not any("cofounder approve" in line for line in lines)


async def test_an_unknown_build_has_no_plan(
    settings: Settings, http: httpx.AsyncClient, api_url: str
) -> None:
    response = await http.get("/api/builds/nope/plan")
    assert response.status_code == 404
    assert response.json() == {"detail": "build nope not found"}
    assert (await http.get("/api/builds/no%00pe/plan")).status_code == 422

    printed = await asyncio.to_thread(cli, settings, api_url, "plan", "nope")
    assert printed == (2, ["error: build nope not found"])


async def test_a_build_still_planning_has_no_plan_yet(
    env: WorkflowEnvironment,
    settings: Settings,
    http: httpx.AsyncClient,
    api_url: str,
    offline_model: str,
) -> None:
    inject_faults(offline_model, {"delay": 30.0, "role": "architect"})
    async with running_worker(env.client, settings):
        build_id = await start(http, require_approval=True)
        await wait_for(http, build_id, "planning")

        response = await http.get(f"/api/builds/{build_id}/plan")
        assert response.status_code == 409
        assert response.json() == {
            "detail": f"build {build_id} has no plan yet (status: planning); try again soon"
        }
        printed = await asyncio.to_thread(cli, settings, api_url, "plan", build_id)
        assert printed == (
            2,
            [f"error: build {build_id} has no plan yet (status: planning); try again soon"],
        )

        assert (await http.post(f"/api/builds/{build_id}/cancel")).status_code == 202
        await wait_for(http, build_id, "cancelled")
        ended = await http.get(f"/api/builds/{build_id}/plan")
        assert ended.status_code == 409
        assert ended.json() == {"detail": f"build {build_id} ended cancelled before it had a plan"}


async def test_without_a_worker_the_plan_is_504(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plans, "PLAN_QUERY_TIMEOUT", timedelta(milliseconds=300))
    build_id = await start(http, require_approval=True)  # no worker polls this task queue

    response = await http.get(f"/api/builds/{build_id}/plan")

    assert response.status_code == 504
    assert response.json() == {
        "detail": f"build {build_id} did not answer within 0.3s (is a worker running?)"
    }


async def test_following_a_build_shows_its_plan_at_the_gate(
    env: WorkflowEnvironment, settings: Settings, http: httpx.AsyncClient, api_url: str
) -> None:
    lines: list[str] = []
    async with running_worker(env.client, settings):
        build_id = await start(http, require_approval=True)
        following = asyncio.create_task(
            asyncio.to_thread(follow, BuildsApi(api_url), build_id, lines.append)
        )
        deadline = time.monotonic() + 30
        while not any("cofounder approve" in line for line in lines):
            assert time.monotonic() < deadline and not following.done(), lines
            await asyncio.sleep(0.05)
        await http.post(f"/api/builds/{build_id}/approve", json={"approved": False})
        final = await following

    assert final["status"] == "cancelled"
    gate = next(i for i, line in enumerate(lines) if line.endswith("awaiting approval"))
    shown = []
    for line in lines[gate + 1 :]:
        if not line.startswith("    "):
            break
        shown.append(line.removeprefix("    "))
    assert shown[0] == f"plan: slugkit: {GOAL}"
    steps = shown.index("steps:") + 1
    assert shown[steps : steps + len(STEP_LINES) + 1] == [*STEP_LINES, "files:"]
    assert shown[-2:] == [
        f"approve: cofounder approve {build_id}",
        f"reject:  cofounder approve {build_id} --reject --comment 'why'",
    ]
    assert lines[gate + 1 + len(shown)].endswith("cancelled: plan rejected: no comment")


def test_a_plan_of_a_later_architect_reads_and_prints() -> None:
    """Steps as objects or text, a test command and an estimate, and a field unknown here."""
    plan = PlanOut.model_validate(
        {
            "build_id": "b1",
            "title": "healthz",
            "summary": "Add a /healthz endpoint.",
            "steps": [
                {"title": "Route", "description": "GET /healthz answers 200"},
                {"description": "Test it"},
                "Document it",
            ],
            "files": ["app.py"],
            "test_command": "python -m pytest -q",
            "estimated_cost_usd": 0.42,
            "risks": ["none"],  # a field this API does not know yet is left out
        }
    )
    body = plan.model_dump()
    assert body["steps"] == [
        {"title": "Route", "description": "GET /healthz answers 200", "files": []},
        {"title": "Test it", "description": None, "files": []},
        {"title": "Document it", "description": None, "files": []},
    ]
    assert "risks" not in body
    assert plan_lines(body) == [
        "plan: healthz",
        "  Add a /healthz endpoint.",
        "steps:",
        "  1. Route",
        "     GET /healthz answers 200",
        "  2. Test it",
        "  3. Document it",
        "files:",
        "  app.py",
        "test command: python -m pytest -q",
        "estimated cost: $0.4200",
    ]
