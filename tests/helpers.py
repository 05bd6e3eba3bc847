"""Helpers shared by the workflow, crash and benchmark tests."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import ActivityEnvironment

from cofounder.artifacts import ArtifactStore
from cofounder.db import Build, BuildEvent, LedgerEntry, Project, PullRequest
from cofounder.db.models import utcnow
from cofounder.payloads import BuildInput, BuildStatus, BuildView, TurnRequest
from cofounder.settings import Settings
from workflows.build import BuildWorkflow

GOAL = "A small library that turns titles into URL slugs"
HISTORIES = Path(__file__).parent / "histories"


async def record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With COFOUNDER_RECORD_HISTORY=1, keep this build's history for the replay tests."""
    if os.environ.get("COFOUNDER_RECORD_HISTORY") == "1":
        (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())


async def insert_build(
    sessions: async_sessionmaker[AsyncSession],
    project: str = "demo",
    goal: str = GOAL,
    created_at: datetime | None = None,
    build_id: str | None = None,
) -> str:
    """The rows the API writes when it starts a build's workflow."""
    build_id = build_id or uuid.uuid4().hex[:16]
    async with sessions() as session:
        found = await session.scalar(select(Project).where(Project.slug == project))
        if found is None:
            found = Project(owner="local", slug=project)
            session.add(found)
            await session.flush()
        session.add(
            Build(
                id=build_id,
                project_id=found.id,
                owner="local",
                goal=goal,
                status="queued",
                workflow_id=f"build-{build_id}",
                created_at=created_at or utcnow(),
            )
        )
        await session.commit()
    return build_id


async def start_build(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    goal: str = GOAL,
    **fields: Any,
) -> WorkflowHandle[Any, BuildView]:
    build_id = await insert_build(sessions, goal=goal)
    payload = BuildInput(build_id=build_id, project="demo", goal=goal, **fields)
    return await client.start_workflow(
        BuildWorkflow.run, payload, id=f"build-{build_id}", task_queue=settings.task_queue
    )


async def count(sessions: async_sessionmaker[AsyncSession], model: type, **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    async with sessions() as session:
        return int(await session.scalar(query) or 0)


async def side_effects(sessions: async_sessionmaker[AsyncSession], build_id: str) -> dict[str, int]:
    return {
        "pull_requests": await count(sessions, PullRequest, build_id=build_id),
        "ledger_rows": await count(sessions, LedgerEntry, build_id=build_id),
    }


def model_stats(offline_model: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{offline_model}/_control/stats").json()
    return result


def inject_faults(offline_model: str, *faults: dict[str, Any]) -> None:
    httpx.post(f"{offline_model}/_control/faults", json=list(faults)).raise_for_status()


def largest_payload(history: WorkflowHistory) -> int:
    """Size in bytes of the largest single payload recorded in a history."""
    largest = 0
    for event in history.events:
        for field in (
            "workflow_execution_started_event_attributes",
            "activity_task_scheduled_event_attributes",
            "activity_task_completed_event_attributes",
            "workflow_execution_completed_event_attributes",
        ):
            if event.HasField(field):  # type: ignore[arg-type]
                attrs = getattr(event, field)
                payloads = getattr(attrs, "input", None) or getattr(attrs, "result", None)
                for payload in getattr(payloads, "payloads", []):
                    largest = max(largest, payload.ByteSize())
    return largest


def activity_types(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def progress(sessions: async_sessionmaker[AsyncSession], build_id: str) -> list:
    """The build's recorded phases in order, as (status, attempt); the cost never goes down."""
    query = select(BuildEvent).where(BuildEvent.build_id == build_id).order_by(BuildEvent.seq)
    async with sessions() as session:
        events = (await session.scalars(query)).all()
    costs = [e.cost_micro_usd for e in events]
    assert costs == sorted(costs), "the cost at each phase never goes down"
    return [(e.status, e.attempt) for e in events]


def retried_activities(history: WorkflowHistory) -> list[str]:
    """The activities a worker started again (attempt 2 or later), in order."""
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        names[started.scheduled_event_id]
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and (started := e.activity_task_started_event_attributes).attempt >= 2
    ]


def activity_summaries(history: WorkflowHistory) -> list[str]:
    """The summary the Temporal UI shows for each scheduled activity, in order."""
    return [
        json.loads(e.user_metadata.summary.data or b'""')
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def wait_for_status(
    handle: WorkflowHandle[Any, BuildView], status: BuildStatus, timeout: float = 30.0
) -> BuildView:
    """Poll the `status` query until the build reaches `status`; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while True:
        view = await handle.query(BuildWorkflow.status)
        if view.status == status:
            return view
        assert not view.status.terminal, f"build ended {view.status} before {status}"
        assert time.monotonic() < deadline, f"build never reached {status}; last {view.status}"
        await asyncio.sleep(0.05)


async def api_status(
    http: httpx.AsyncClient, build_id: str, status: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll `GET /api/builds/{id}` until the build is in `status`; fail if it settles elsewhere."""
    deadline = time.monotonic() + timeout
    while True:
        build: dict[str, Any] = (await http.get(f"/api/builds/{build_id}")).json()
        if build["status"] == status:
            return build
        assert not BuildStatus(build["status"]).terminal, f"build ended first: {build}"
        assert time.monotonic() < deadline, f"build never reached {status}: {build}"
        await asyncio.sleep(0.1)


def sandboxes_of(pid: int) -> list[int]:
    """Pids of bwrap processes descended from `pid`."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue

    def descends(child: int) -> bool:
        while child > 1:
            child = parents.get(child, 0)
            if child == pid:
                return True
        return False

    found = []
    for child in parents:
        try:
            if b"bwrap" in Path(f"/proc/{child}/cmdline").read_bytes() and descends(child):
                found.append(child)
        except OSError:
            continue
    return found


async def workflows_on(client: Client, task_queue: str, expect: int) -> list[Any]:
    """The executions on a task queue, once visibility (eventually consistent) shows `expect`."""
    found: list[Any] = []
    for _ in range(100):
        found = [wf async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'")]
        if len(found) >= expect:
            break
        await asyncio.sleep(0.1)
    return found


def env_for(build_id: str, activity_id: str) -> ActivityEnvironment:
    """An activity environment whose info looks like one activity of the build's workflow."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=f"build-{build_id}",
        workflow_run_id="run-1",
        activity_id=activity_id,
    )
    return env


def owned(store: ArtifactStore) -> ArtifactStore:
    """The local owner's part of `store`: where the activities of a test build keep artifacts."""
    return store.for_owner("local")


def turn_requests(history: WorkflowHistory) -> list[TurnRequest]:
    """The input of every model turn the workflow scheduled, decoded."""
    return [
        TurnRequest.model_validate(json.loads(attrs.input.payloads[0].data))
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and (attrs := e.activity_task_scheduled_event_attributes).activity_type.name == "model_turn"
    ]
