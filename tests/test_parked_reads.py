"""A parked build (at the plan gate, in review) is read from the view its row keeps, so reading
it needs no worker to replay it; once the API has steered it, the workflow answers until a newer
phase is recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from api import queries
from api.main import create_app
from cofounder.db import Build
from cofounder.payloads import BuildView
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import api_status
from worker import running_worker

# What a read of a parked build owes the reader, whoever answers it.
SHOWN = ("status", "steps", "budget", "pull_request", "iterations", "queued_feedback", "cost")


def shown(build: dict[str, Any]) -> dict[str, Any]:
    return {key: build[key] for key in SHOWN}


async def kept_view(sessions: Any, build_id: str) -> BuildView | None:
    async with sessions() as session:
        kept = await session.scalar(select(Build.view).where(Build.id == build_id))
    return None if kept is None else BuildView.model_validate_json(kept)


async def until_kept(sessions: Any, build_id: str, status: str) -> None:
    for _ in range(200):
        kept = await kept_view(sessions, build_id)
        if kept is not None and kept.status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the row never kept a view {status!r}: {kept}")


async def test_a_parked_build_reads_without_a_worker_and_steering_reads_it_live(
    env: WorkflowEnvironment, settings: Settings, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API and Temporal's dev server share this machine's clock.
    monkeypatch.setattr(queries, "CLOCK_SKEW", queries.timedelta(0))
    body = {"project": "demo", "goal": "a slug library", "require_approval": True, "budget_usd": 1}
    with ServerThread(create_app(settings, client=env.client)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            async with running_worker(env.client, settings):
                started = await http.post("/api/builds", json=body)
                assert started.status_code == 202, started.text
                build_id = started.json()["id"]
                at_gate = await api_status(http, build_id, "awaiting_approval")
                # The live view parks before `record_status` writes the row; let it write.
                await until_kept(sessions, build_id, "awaiting_approval")
            assert at_gate["budget"]["limit_usd"] == 1 and at_gate["budget"]["spent_by_role_usd"]

            # No worker: the row's view answers, steps and budget included.
            alone = (await http.get(f"/api/builds/{build_id}")).json()
            assert shown(alone) == shown(at_gate)
            # The plan the gate waits on reads without a worker too.
            plan = await http.get(f"/api/builds/{build_id}/plan")
            assert plan.status_code == 200, plan.text
            assert plan.json()["build_id"] == build_id and plan.json()["steps"]

            async with running_worker(env.client, settings):
                # Sent at once: after a restart the first task for the build can wait out the
                # server's window for the stopped worker's sticky queue (about 10 s).
                raised = await http.post(f"/api/builds/{build_id}/budget", json={"add_usd": 2})
                assert raised.status_code == 200, raised.text
                # The kept view predates the raise; the read must not answer from it.
                kept = await kept_view(sessions, build_id)
                assert kept is not None and kept.budget_micro_usd == 1_000_000
                after = (await http.get(f"/api/builds/{build_id}")).json()
                assert after["budget"]["limit_usd"] == 3

                approved = await http.post(
                    f"/api/builds/{build_id}/approve", json={"approved": True}
                )
                assert approved.status_code == 200, approved.text
                in_review = await api_status(http, build_id, "in_review")
                await until_kept(sessions, build_id, "in_review")
            assert in_review["pull_request"] and in_review["steps"]
            assert in_review["budget"]["limit_usd"] == 3

            alone = (await http.get(f"/api/builds/{build_id}")).json()
            assert shown(alone) == shown(in_review)
            # A phase where work runs keeps no view: it would be stale within moments.
            kept = await kept_view(sessions, build_id)
            assert kept is not None and kept.status == "in_review"
