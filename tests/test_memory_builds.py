"""Project memory through whole builds: real worker, offline model, real dev server, the
database store. The offline architect records two decisions per plan, hears the goal's
conventions, and cites the first decision or convention it is reminded of."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from cofounder.follow import BuildsApi
from cofounder.memory import Scope
from cofounder.memory.database import DatabaseMemory
from cofounder.memory_demo import run_memory_demo
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import activity_summaries, api_status
from tests.test_plan_api import as_another_owner
from worker import running_worker

SHOP = Scope(owner="local", project="shop")


async def kinds(memory: DatabaseMemory, scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in await memory.list(scope, limit=100):
        found.setdefault(item.kind, []).append(item.text)
    return found


async def plan_summary(http: httpx.AsyncClient, build_id: str) -> str:
    await api_status(http, build_id, "awaiting_approval")
    plan = (await http.get(f"/api/builds/{build_id}/plan")).json()
    return str(plan["summary"])


async def recalled_ids(env: WorkflowEnvironment, workflow_id: str) -> list[list[str]]:
    """What each recall of the build answered, from its history."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    answers = []
    converter = env.client.data_converter.payload_converter
    for e in history.events:
        done = e.activity_task_completed_event_attributes
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            if scheduled[done.scheduled_event_id] == "recall":
                answers.append(converter.from_payloads(done.result.payloads)[0]["ids"])
    return answers


async def test_a_second_build_recalls_the_first_builds_decision_and_no_one_elses(
    env: WorkflowEnvironment, settings: Settings, sessions: Any
) -> None:
    memory = DatabaseMemory(sessions)
    lines: list[str] = []
    with ServerThread(create_app_for(settings, env)) as server:
        async with running_worker(env.client, settings):
            api = BuildsApi(server.url, timeout=60)
            summary = await asyncio.to_thread(run_memory_demo, api, lines.append, "shop")
            said = next(line for line in lines if line.startswith("\nfirst build "))
            first = said.split()[2].rstrip(":")  # "first build <id>: <goal>"
            assert f"Keeps to the decision of build {first}" in summary, lines

            remembered = await kinds(memory, SHOP)
            # Each build's plan recorded its two decisions.
            assert len(remembered["decision"]) == 4 and "pytest" in remembered["decision"][0]
            assert set(remembered["convention"]) == {"We use pytest", "no new dependencies"}
            assert any(f"Build {first}" in text for text in remembered["outcome"])

            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                # Bob's project is also called shop; he is reminded of nothing of Alice's.
                async with as_another_owner(settings, env) as bob:
                    body = {"project": "shop", "goal": "a slug library", "require_approval": True}
                    started = (await bob.post("/api/builds", json=body)).json()
                    theirs = await plan_summary(bob, started["id"])
                    assert "Keeps to" not in theirs
                    assert await recalled_ids(env, started["workflow_id"]) == [[]]
                    assert (await bob.post(f"/api/builds/{started['id']}/cancel")).is_success

                # Forgotten decisions and conventions are never recalled again.
                for item in await memory.list(SHOP, limit=100):
                    if item.kind in ("decision", "convention"):
                        await memory.delete(SHOP, item.id)
                body = {"project": "shop", "goal": "a slug library", "require_approval": True}
                started = (await http.post("/api/builds", json=body)).json()
                assert "Keeps to" not in await plan_summary(http, started["id"])
                left = {item.id for item in await memory.list(SHOP, limit=100)}
                recalled = await recalled_ids(env, started["workflow_id"])
                assert len(recalled) == 1 and recalled[0] and set(recalled[0]) <= left
                assert (await http.post(f"/api/builds/{started['id']}/cancel")).is_success


async def test_an_iterations_feedback_is_remembered_with_its_source(
    env: WorkflowEnvironment, settings: Settings, sessions: Any
) -> None:
    memory = DatabaseMemory(sessions)
    with ServerThread(create_app_for(settings, env)) as server:
        async with running_worker(env.client, settings):
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                body = {"project": "shop", "goal": "a slug library"}
                build = (await http.post("/api/builds", json=body)).json()
                await api_status(http, build["id"], "in_review")
                said = "Please mention the separator option in the README"
                sent = await http.post(f"/api/builds/{build['id']}/feedback", json={"body": said})
                assert sent.status_code == 202, sent.text
                deadline = time.monotonic() + 60
                while not (feedback := (await kinds(memory, SHOP)).get("feedback")):
                    assert time.monotonic() < deadline, await kinds(memory, SHOP)
                    await asyncio.sleep(0.2)
    assert feedback == [f"@local (api): {said}"]
    found = await memory.search(SHOP, "separator README", limit=1)
    assert found[0].source == build["id"] and found[0].build_id == build["id"]
    # The iteration was reminded of what the first pass recorded before its coder began.
    history = await env.client.get_workflow_handle(build["workflow_id"]).fetch_history()
    summaries = [s for s in activity_summaries(history) if s.startswith("recall")]
    assert summaries == ["recall for the plan", "recall for iteration 1"]
    plan_recall, iteration_recall = await recalled_ids(env, build["workflow_id"])
    assert plan_recall == [] and iteration_recall


def create_app_for(settings: Settings, env: WorkflowEnvironment) -> Any:
    from api.main import create_app

    return create_app(settings, client=env.client)
