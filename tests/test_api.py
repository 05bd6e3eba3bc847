"""The HTTP API against a real Temporal dev server and a migrated SQLite database.

No real worker runs here: a started build stays queued in Temporal, which is enough to check
what the API starts. Tests that need the workflow to answer use `BuildWorkflowDouble`, a stand-in
for the real workflow's query/update interface, on a worker of the test's own task queue.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import structlog
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api import controls, queries
from api.main import create_app
from cofounder.db import Build, Project, PullRequest
from cofounder.logging import configure_logging
from cofounder.payloads import (
    ApprovalDecision,
    Budget,
    BuildInput,
    BuildStatus,
    BuildView,
    ReviewSettings,
    Usage,
)
from cofounder.settings import Settings
from tests.conftest import free_port
from tests.helpers import workflows_on
from workflows.build import WORKFLOW_NAME

Sessions = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def running_app(settings: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app with its lifespan running (engine open, client attached)."""
    app: FastAPI = create_app(settings, client=client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


@pytest_asyncio.fixture
async def http(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(settings, env.client) as client:
        yield client


@workflow.defn(name=WORKFLOW_NAME)
class BuildWorkflowDouble:
    """Test double of BuildWorkflow's interface: the `status` query and the validated `approve`
    update, with the same payloads and the same validator rule. It plans instantly."""

    @workflow.init
    def __init__(self, input: BuildInput) -> None:
        status = BuildStatus.AWAITING_APPROVAL if input.require_approval else BuildStatus.PLANNING
        usage = Usage(calls=1, input_tokens=1200, output_tokens=300, cost_micro_usd=8100)
        self._view = BuildView(build_id=input.build_id, status=status, attempt=1, cost=usage)
        self._decision: ApprovalDecision | None = None

    @workflow.run
    async def run(self, input: BuildInput) -> BuildView:
        await workflow.wait_condition(lambda: self._decision is not None)
        return self._view

    @workflow.query
    def status(self) -> BuildView:
        return self._view

    @workflow.update
    async def approve(self, decision: ApprovalDecision) -> BuildView:
        self._decision = decision
        self._view.status = BuildStatus.CODING if decision.approved else BuildStatus.CANCELLED
        return self._view

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        if self._view.status != BuildStatus.AWAITING_APPROVAL:
            raise ValueError(f"build is not awaiting approval (status: {self._view.status})")


@pytest_asyncio.fixture
async def double(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    # Unsandboxed: this module imports the whole API, which the sandbox would re-import.
    worker = Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[BuildWorkflowDouble],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        yield worker


async def unreachable_client() -> Client:
    """A client of a closed port: it only fails when used."""
    address = f"127.0.0.1:{free_port()}"
    return await Client.connect(address, data_converter=pydantic_data_converter, lazy=True)


async def row_counts(sessions: Sessions) -> tuple[int, int]:
    async with sessions() as session:
        projects = await session.scalar(select(func.count()).select_from(Project))
        builds = await session.scalar(select(func.count()).select_from(Build))
    return int(projects or 0), int(builds or 0)


async def set_row(sessions: Sessions, build_id: str, **values: Any) -> None:
    async with sessions() as session:
        await session.execute(update(Build).where(Build.id == build_id).values(**values))
        await session.commit()


async def start(http: httpx.AsyncClient, project: str = "demo", **body: Any) -> dict[str, Any]:
    response = await http.post(
        "/api/builds", json={"project": project, "goal": "add /healthz with tests", **body}
    )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


# --- starting builds ---------------------------------------------------------------------------


async def test_start_records_the_build_and_starts_its_workflow(
    http: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    response = await http.post(
        "/api/builds",
        json={"project": "shop-api", "goal": "  add /healthz  ", "require_approval": True},
        headers={"X-Request-ID": "req-123"},
    )

    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-123"
    build = response.json()
    assert build["status"] == "queued"
    assert build["goal"] == "add /healthz"
    assert build["project"] == "shop-api"
    assert build["require_approval"] is True
    assert build["workflow_id"] == f"build-{build['id']}"
    assert len(build["id"]) <= 32
    assert build["cost"] == {"usd": 0.0, "input_tokens": 0, "output_tokens": 0}
    assert build["pull_request"] is None and build["finished_at"] is None
    assert build["created_at"].endswith(("Z", "+00:00"))

    async with sessions() as session:
        row = await session.get(Build, build["id"])
        assert row is not None
        project = await session.get(Project, row.project_id)
    assert (row.status, row.owner, row.workflow_id) == ("queued", "local", build["workflow_id"])
    assert project is not None and (project.owner, project.slug) == ("local", "shop-api")

    description = await env.client.get_workflow_handle(build["workflow_id"]).describe()
    assert description.workflow_type == WORKFLOW_NAME
    assert description.task_queue == settings.task_queue
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert attributes.get(SearchAttributeKey.for_keyword("BuildStatus")) == "queued"
    assert attributes.get(SearchAttributeKey.for_keyword("Project")) == "shop-api"
    assert attributes.get(SearchAttributeKey.for_keyword("Owner")) == "local"
    assert await description.memo_value("request_id") == "req-123"


async def test_workflow_input_carries_the_build(
    http: httpx.AsyncClient, env: WorkflowEnvironment, settings: Settings
) -> None:
    build = await start(http, goal="write a CSV to JSON CLI", require_approval=True)

    handle = env.client.get_workflow_handle(build["workflow_id"])
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [payload] = env.client.data_converter.payload_converter.from_payloads(
        started.input.payloads, [BuildInput]
    )
    assert payload == BuildInput(
        build_id=build["id"],
        project="demo",
        goal="write a CSV to JSON CLI",
        require_approval=True,
        max_attempts=settings.max_attempts,
        owner="local",
        # No budget asked for: the server's default, and its wait.
        budget=Budget(
            limit_micro_usd=round(settings.default_budget_usd * 1e6),
            wait_seconds=settings.budget_wait_seconds,
        ),
        # Its pull request will stay in review, iterating on feedback, as the server says.
        review=ReviewSettings(
            idle_seconds=settings.review_idle_hours * 3600,
            iterations_per_run=settings.review_iterations_per_run,
            settle_seconds=settings.review_settle_seconds,
        ),
    )


async def test_a_project_is_created_once_per_owner(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    first = await start(http, "demo")
    second = await start(http, "demo")
    await start(http, "other")

    assert first["id"] != second["id"]
    assert await row_counts(sessions) == (2, 3)


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("malformed json", b'{"project": "demo", "goal": ', "JSON decode error"),
    ("not an object", ["demo", "goal"], "valid dictionary"),
    ("unknown field", {"project": "demo", "goal": "x", "budget": 5}, "Extra inputs"),
    ("missing goal", {"project": "demo"}, "Field required"),
    ("uppercase slug", {"project": "Demo", "goal": "x"}, "lowercase"),
    ("slug with a slash", {"project": "a/b", "goal": "x"}, "lowercase"),
    ("slug starting with -", {"project": "-demo", "goal": "x"}, "lowercase"),
    ("empty slug", {"project": "", "goal": "x"}, "lowercase"),
    ("64-char slug", {"project": "a" * 64, "goal": "x"}, "lowercase"),
    ("empty goal", {"project": "demo", "goal": ""}, "other than whitespace"),
    ("blank goal", {"project": "demo", "goal": " \n\t "}, "other than whitespace"),
    ("oversized before stripping", {"project": "demo", "goal": "x" * 4000 + " "}, "at most 4000"),
    ("oversized goal", {"project": "demo", "goal": "x" * 4001}, "at most 4000"),
    ("goal not a string", {"project": "demo", "goal": 42}, "valid string"),
    ("approval not a bool", {"project": "demo", "goal": "x", "require_approval": "maybe"}, "bool"),
    ("approval as a string", {"project": "demo", "goal": "x", "require_approval": "yes"}, "bool"),
]


async def test_bad_input_is_422_and_creates_nothing(
    http: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    for name, body, message in BAD_BODIES:
        if isinstance(body, bytes):
            headers = {"Content-Type": "application/json"}
            response = await http.post("/api/builds", content=body, headers=headers)
        else:
            response = await http.post("/api/builds", json=body)
        assert response.status_code == 422, name
        assert message in json.dumps(response.json()["detail"]), (name, response.text)

    assert await row_counts(sessions) == (0, 0)
    # Visibility lags, so prove "nothing started" by waiting for the one build that should be.
    good = await start(http, "a" * 63, goal="x" * 4000)
    started = await workflows_on(env.client, settings.task_queue, expect=1)
    assert [wf.id for wf in started] == [good["workflow_id"]]
    assert await row_counts(sessions) == (1, 1)


async def test_temporal_down_is_503_and_creates_nothing(
    settings: Settings, sessions: Sessions
) -> None:
    unreachable = await unreachable_client()
    async with running_app(settings, unreachable) as http:
        response = await http.post("/api/builds", json={"project": "demo", "goal": "x"})

    assert response.status_code == 503
    assert "could not start the build" in response.json()["detail"]
    assert await row_counts(sessions) == (0, 0)


async def test_a_failed_commit_terminates_the_started_workflow(
    http: httpx.AsyncClient,
    sessions: Sessions,
    env: WorkflowEnvironment,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_commit(self: AsyncSession) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(AsyncSession, "commit", broken_commit)
    response = await http.post("/api/builds", json={"project": "demo", "goal": "x"})
    monkeypatch.undo()

    assert response.status_code == 503
    assert "could not save the build" in response.json()["detail"]
    assert await row_counts(sessions) == (0, 0)
    [orphan] = await workflows_on(env.client, settings.task_queue, expect=1)
    description = await env.client.get_workflow_handle(orphan.id).describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED


# --- reading builds ----------------------------------------------------------------------------


async def test_unknown_build_is_404_everywhere(http: httpx.AsyncClient) -> None:
    for method, path, body in [
        ("GET", "/api/builds/nope", None),
        ("POST", "/api/builds/nope/cancel", None),
        ("POST", "/api/builds/nope/approve", {"approved": True}),
        ("GET", "/api/builds/nope/pull-request", None),
    ]:
        response = await http.request(method, path, json=body)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "build nope not found"}


async def test_other_owners_builds_are_invisible(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    mine = await start(http, "demo")
    async with sessions() as session:
        project = Project(owner="someone-else", slug="demo")
        session.add(project)
        await session.flush()
        theirs = Build(
            id="theirs",
            project_id=project.id,
            owner="someone-else",
            goal="secret",
            status="queued",
            workflow_id="build-theirs",
        )
        session.add(theirs)
        await session.commit()

    assert (await http.get("/api/builds/theirs")).status_code == 404
    listed = (await http.get("/api/builds")).json()["builds"]
    assert [b["id"] for b in listed] == [mine["id"]]


async def test_without_a_worker_the_row_answers(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "STATUS_QUERY_TIMEOUT", timedelta(milliseconds=300))
    build = await start(http)

    response = await http.get(f"/api/builds/{build['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["id"] == build["id"]


async def test_a_running_build_shows_the_workflows_live_view(
    http: httpx.AsyncClient, sessions: Sessions, double: Worker, env: WorkflowEnvironment
) -> None:
    build = await start(http)

    live = (await http.get(f"/api/builds/{build['id']}")).json()

    assert live["status"] == "planning"
    assert live["attempts"] == 1
    assert live["cost"] == {"usd": 0.0081, "input_tokens": 1200, "output_tokens": 300}

    # The row says the build ended but its workflow runs (an operator reset it): live view.
    await set_row(sessions, build["id"], status="failed", error="tests never passed", attempts=3)
    reset = (await http.get(f"/api/builds/{build['id']}")).json()
    assert (reset["status"], reset["error"]) == ("planning", None)
    # Once the workflow has ended too, the row is authoritative (no question to the workflow).
    await env.client.get_workflow_handle(build["workflow_id"]).terminate()
    final = (await http.get(f"/api/builds/{build['id']}")).json()
    assert (final["status"], final["error"], final["attempts"]) == (
        "failed",
        "tests never passed",
        3,
    )


async def test_list_is_newest_first_and_filters(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    a = await start(http, "alpha")
    b = await start(http, "beta")
    c = await start(http, "alpha")
    await set_row(sessions, b["id"], status="succeeded")

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [build["id"] for build in response.json()["builds"]]

    assert ids(await http.get("/api/builds")) == [c["id"], b["id"], a["id"]]
    assert ids(await http.get("/api/builds", params={"project": "alpha"})) == [c["id"], a["id"]]
    assert ids(await http.get("/api/builds", params={"status": "succeeded"})) == [b["id"]]
    assert ids(await http.get("/api/builds", params={"status": "queued", "limit": 1})) == [c["id"]]
    assert ids(await http.get("/api/builds", params={"project": "gamma"})) == []

    for params in ({"status": "done"}, {"limit": 0}, {"limit": 201}, {"project": "Alpha"}):
        response = await http.get("/api/builds", params=params)
        assert response.status_code == 422, params
    bad_status = await http.get("/api/builds", params={"status": "done"})
    assert "awaiting_approval" in bad_status.text


# --- steering builds ---------------------------------------------------------------------------


async def test_cancel_requests_cancellation_and_is_idempotent(
    http: httpx.AsyncClient, env: WorkflowEnvironment
) -> None:
    build = await start(http)

    first = await http.post(f"/api/builds/{build['id']}/cancel")
    again = await http.post(f"/api/builds/{build['id']}/cancel")

    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["id"] == build["id"]
    history = await env.client.get_workflow_handle(build["workflow_id"]).fetch_history()
    requested = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    ]
    assert len(requested) >= 1


async def test_cancelling_a_finished_build_is_409(
    http: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    recorded = await start(http)
    await set_row(sessions, recorded["id"], status="succeeded")
    response = await http.post(f"/api/builds/{recorded['id']}/cancel")
    assert response.status_code == 409
    assert (
        response.json()["detail"]
        == f"build {recorded['id']} already succeeded; it cannot be cancelled"
    )

    # Ended outside the API: the row still says queued, Temporal knows better.
    terminated = await start(http)
    await env.client.get_workflow_handle(terminated["workflow_id"]).terminate(reason="test")
    response = await http.post(f"/api/builds/{terminated['id']}/cancel")
    assert response.status_code == 409
    assert "already finished" in response.json()["detail"]


async def test_approve_outside_the_approval_gate_is_409_with_the_validators_reason(
    http: httpx.AsyncClient, double: Worker
) -> None:
    build = await start(http, require_approval=False)

    response = await http.post(f"/api/builds/{build['id']}/approve", json={"approved": True})

    assert response.status_code == 409
    assert response.json()["detail"] == "build is not awaiting approval (status: planning)"


async def test_approve_at_the_gate_returns_the_build_moving_on(
    http: httpx.AsyncClient, env: WorkflowEnvironment, double: Worker
) -> None:
    build = await start(http, require_approval=True)
    path = f"/api/builds/{build['id']}/approve"

    bad = await http.post(path, json={"approved": True, "comment": "ok", "extra": 1})
    assert bad.status_code == 422
    response = await http.post(path, json={"approved": True, "comment": "ship it"})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "coding"
    assert response.json()["id"] == build["id"]
    handle = env.client.get_workflow_handle(build["workflow_id"], result_type=BuildView)
    result = await handle.result()
    assert result.status == BuildStatus.CODING


async def test_approving_a_finished_build_is_409(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    build = await start(http, require_approval=True)
    await set_row(sessions, build["id"], status="cancelled")

    response = await http.post(f"/api/builds/{build['id']}/approve", json={"approved": True})

    assert response.status_code == 409
    assert "already cancelled" in response.json()["detail"]


# --- pull requests -----------------------------------------------------------------------------


async def test_pull_request_is_404_until_the_build_has_one(
    http: httpx.AsyncClient, sessions: Sessions
) -> None:
    build = await start(http)
    path = f"/api/builds/{build['id']}/pull-request"

    missing = await http.get(path)
    assert missing.status_code == 404
    assert "has no pull request" in missing.json()["detail"]

    async with sessions() as session:
        row = await session.get(Build, build["id"])
        assert row is not None
        session.add(
            PullRequest(
                build_id=row.id,
                project_id=row.project_id,
                title="Add /healthz",
                body="Tests pass.",
                base="main",
                branch=f"cofounder/{row.id}",
                head_sha="a" * 40,
                diff="+def healthz(): ...\n",
            )
        )
        await session.commit()
    await set_row(sessions, build["id"], status="succeeded")

    found = await http.get(path)
    assert found.status_code == 200
    pr = found.json()
    assert (pr["title"], pr["base"], pr["branch"]) == (
        "Add /healthz",
        "main",
        f"cofounder/{row.id}",
    )
    assert pr["diff"] == "+def healthz(): ...\n" and pr["head_sha"] == "a" * 40
    summary = (await http.get(f"/api/builds/{build['id']}")).json()["pull_request"]
    assert summary == {
        "id": pr["id"],
        "title": "Add /healthz",
        "branch": f"cofounder/{row.id}",
        "base": "main",
        "head_sha": "a" * 40,
        "provider": "local",
        "url": None,
    }


# --- health and plumbing -----------------------------------------------------------------------


async def test_healthz_and_readyz_when_all_is_up(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "temporal": "ok"}}


async def test_readyz_is_503_naming_temporal_when_it_is_unreachable(
    settings: Settings, sessions: Sessions
) -> None:
    unreachable = await unreachable_client()
    async with running_app(settings, unreachable) as http:
        response = await http.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"].startswith("down")
    assert body["detail"] == "not ready: temporal is down"


async def test_readyz_is_503_naming_the_database_when_it_is_unreachable(
    tmp_path: Path, settings: Settings, env: WorkflowEnvironment
) -> None:
    broken = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/missing/dir/app.db"}
    )
    async with running_app(broken, env.client) as http:
        response = await http.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["temporal"] == "ok"
    assert response.json()["detail"] == "not ready: database is down"


async def test_request_ids_are_echoed_or_made_and_logged(http: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(json=True)
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        sent = await http.get("/healthz", headers={"X-Request-ID": "abc-1"})
        made = await http.get("/healthz")
        hostile = await http.get("/healthz", headers={"X-Request-ID": 'x" injected'})
    finally:
        root.handlers, root.level = saved[0], saved[1]
        structlog.reset_defaults()

    assert sent.headers["X-Request-ID"] == "abc-1"
    assert len(made.headers["X-Request-ID"]) == 32
    assert hostile.headers["X-Request-ID"] not in ('x" injected', made.headers["X-Request-ID"])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert [line["request_id"] for line in requests] == [
        "abc-1",
        made.headers["X-Request-ID"],
        hostile.headers["X-Request-ID"],
    ]
    assert requests[0]["status"] == 200 and requests[0]["path"] == "/healthz"
    assert requests[0]["timestamp"].endswith("Z")


async def test_openapi_documents_the_endpoints(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert {
        "/api/builds",
        "/api/builds/{build_id}",
        "/api/builds/{build_id}/cancel",
        "/api/builds/{build_id}/approve",
        "/api/builds/{build_id}/pull-request",
        "/healthz",
        "/readyz",
    } <= set(schema["paths"])
    assert schema["paths"]["/api/builds"]["post"]["description"]


async def test_approve_without_an_answer_is_504(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controls, "UPDATE_TIMEOUT", timedelta(milliseconds=300))
    build = await start(http, require_approval=True)  # no worker polls this task queue

    response = await http.post(f"/api/builds/{build['id']}/approve", json={"approved": True})

    assert response.status_code == 504
    assert "is a worker running?" in response.json()["detail"]


async def test_without_a_client_the_app_connects_from_settings(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    address = env.client.service_client.config.target_host
    app = create_app(settings.model_copy(update={"temporal_address": address}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            build = await start(http)
            ready = await http.get("/readyz")

    assert ready.status_code == 200
    description = await env.client.get_workflow_handle(build["workflow_id"]).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
