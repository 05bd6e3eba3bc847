"""The HTTP API keeps its OpenAPI contract: schemathesis fuzzes every operation of the real app.

The app runs under uvicorn in a thread, as `cofounder dev` runs it: its own event loop, its own
Temporal client of the session's dev server, a freshly migrated database (SQLite, and
PostgreSQL when TEST_DATABASE_URL is set). No worker polls the task queue, so a started build
stays queued until the fixture terminates it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import hypothesis
import pytest_asyncio
import schemathesis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cofounder.db import Build
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import count, workflows_on

Sessions = async_sessionmaker[AsyncSession]

# Examples per operation for the fuzzing phase; the coverage phase adds its boundary cases.
MAX_EXAMPLES = 25

CONTRACT = schemathesis.Config.from_dict(
    {
        "checks": {
            # Exactly these; the others need links between operations or authentication.
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "positive_data_acceptance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
            "unsupported_method": {"enabled": True},
            "allow_header_conformance": {"enabled": True},
        },
    }
)

# Loaded at import, as schemathesis' pytest integration needs (its fixture-based loader fails on
# pytest 9.2): the very document /openapi.json serves, built without starting the app.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None)).openapi(),  # type: ignore[call-arg]
    config=CONTRACT,
)


@pytest_asyncio.fixture
async def api_url(
    settings: Settings, db_url: str, db: Sessions, env: WorkflowEnvironment
) -> AsyncIterator[str]:
    address = env.client.service_client.config.target_host
    served = settings.model_copy(update={"database_url": db_url, "temporal_address": address})
    with ServerThread(create_app(served)) as server:
        yield server.url
    # Queued builds would otherwise wait on the dev server for the rest of the session.
    async with db() as session:
        workflow_ids = (await session.scalars(select(Build.workflow_id))).all()
    for workflow_id in workflow_ids:
        await env.client.get_workflow_handle(workflow_id).terminate(reason="contract test over")


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run, so a failure is never a fluke of CI
    database=None,
    deadline=None,
    # One server per operation, not per example, is the point of the function-scoped fixture.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_every_answer_keeps_the_contract(case: schemathesis.Case, api_url: str) -> None:
    case.call_and_validate(base_url=api_url)


async def test_unsupported_methods_are_answered_with_every_method_of_the_path(
    api_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        builds = await http.options("/api/builds")
        one = await http.delete("/api/builds/nope")

    assert builds.status_code == 405
    assert {m.strip() for m in builds.headers["Allow"].split(",")} == {"GET", "POST"}
    assert (one.status_code, one.headers["Allow"]) == (405, "GET")


REFUSED = [
    ("malformed json", b'{"project": "demo", "goal": ', 422),
    ("not utf-8", b'{"project": "demo", "goal": "\xff"}', 400),
    ("bad slug", b'{"project": "Demo!", "goal": "x"}', 422),
    ("extra field", b'{"project": "demo", "goal": "x", "budget": 5}', 422),
    ("nul in the goal", b'{"project": "demo", "goal": "x\\u0000"}', 422),
]


async def test_a_refused_request_changes_nothing(
    api_url: str, db: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        for name, body, status in REFUSED:
            headers = {"Content-Type": "application/json"}
            response = await http.post("/api/builds", content=body, headers=headers)
            assert response.status_code == status, (name, response.text)
        assert await count(db, Build) == 0
        # Visibility lags, so prove "nothing started" by waiting for the one build that should be.
        good = await http.post("/api/builds", json={"project": "demo", "goal": "x"})

    started = await workflows_on(env.client, settings.task_queue, expect=1)
    assert [wf.id for wf in started] == [good.json()["workflow_id"]]
    assert await count(db, Build) == 1
