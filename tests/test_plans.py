"""Plans and quotas: a build is admitted under its owner's plan, atomically, or refused with the
limit it hit and nothing created; an Idempotency-Key answers its first build."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.deps import User, get_current_user
from api.main import create_app
from cofounder.db import Build, LedgerEntry, UserAccount, make_engine, make_sessionmaker
from cofounder.payloads import BuildInput
from cofounder.plans import PlanLimits
from cofounder.settings import Settings

HAIKU = "claude-haiku-4-5"
TINY = PlanLimits(
    projects=2,
    concurrent_builds=2,
    builds_per_day=None,
    monthly_spend_usd=3.0,
    build_budget_usd=1.0,
    models=[HAIKU],
)


@dataclass
class Front:
    app: FastAPI
    http: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    env: WorkflowEnvironment

    def acting_as(self, user: str) -> Front:
        self.app.dependency_overrides[get_current_user] = lambda: User(id=user)
        return self

    async def build(self, project: str = "shop", **body: Any) -> httpx.Response:
        headers = {"Idempotency-Key": body.pop("key")} if "key" in body else {}
        payload = {"project": project, "goal": "add a healthz endpoint", **body}
        return await self.http.post("/api/builds", json=payload, headers=headers)

    async def builds(self, owner: str) -> int:
        async with self.sessions() as session:
            query = select(func.count()).select_from(Build).where(Build.owner == owner)
            return int(await session.scalar(query) or 0)

    async def set_user(self, owner: str, **values: Any) -> None:
        async with self.sessions() as session:
            await session.execute(update(UserAccount).where(UserAccount.id == owner).values(values))
            await session.commit()


@pytest_asyncio.fixture
async def front(settings: Settings, db_url: str, env: WorkflowEnvironment) -> AsyncIterator[Front]:
    plans = {**settings.plans, "tiny": TINY}
    tuned = settings.model_copy(
        update={"database_url": db_url, "plans": plans, "default_tier": "tiny"}
    )
    app = create_app(tuned, client=env.client)
    engine = make_engine(tuned.resolved_database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield Front(app, http, make_sessionmaker(engine), env).acting_as("u1")
    # Nothing runs these builds (no worker); they are ended so the shared server stays clean.
    async with make_sessionmaker(engine)() as session:
        for workflow_id in (await session.scalars(select(Build.workflow_id))).all():
            await env.client.get_workflow_handle(workflow_id).terminate("test over")
    await engine.dispose()


async def test_concurrent_requests_never_share_the_last_slot(front: Front) -> None:
    answers = await asyncio.gather(*(front.build() for _ in range(6)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202, 202, 429, 429, 429, 429], [a.text for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.json()["limit"] == "concurrent_builds" and refused.json()["tier"] == "tiny"
    assert "2 build(s) at once" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "60"
    assert await front.builds("u1") == 2  # the refused made nothing
    # Another owner has slots of their own.
    assert (await front.acting_as("u2").build()).status_code == 202


async def test_a_plan_caps_projects_builds_a_day_and_models(
    front: Front, env: WorkflowEnvironment
) -> None:
    first = await front.build("one")
    assert first.status_code == 202
    started = await env.client.get_workflow_handle(f"build-{first.json()['id']}").fetch_history()
    attributes = started.events[0].workflow_execution_started_event_attributes
    [payload] = await env.client.data_converter.decode(attributes.input.payloads, [BuildInput])
    # The tier allows only Haiku: every role whose configured model it does not allow uses it.
    assert payload.models == {
        role: HAIKU for role in ("architect", "coder", "debugger", "reviewer")
    }
    assert payload.budget is not None and payload.budget.limit_micro_usd == 1_000_000
    assert (await front.build("two")).status_code == 202
    third = await front.build("three")
    assert third.status_code == 402 and third.json()["limit"] == "projects", third.text
    await front.set_user("u1", tier="daily")
    front.app.state.settings.plans["daily"] = PlanLimits(builds_per_day=2)
    daily = await front.build("one")
    assert daily.status_code == 429 and daily.json()["limit"] == "builds_per_day", daily.text
    assert 0 < int(daily.headers["Retry-After"]) <= 86_400
    assert await front.builds("u1") == 2


async def test_monthly_spend_counts_the_ledger_and_running_budgets(front: Front) -> None:
    made = await front.build()  # reserves its $1.00 default
    assert made.status_code == 202
    async with front.sessions() as session:
        session.add(
            LedgerEntry(
                build_id=made.json()["id"],
                role="coder",
                model=HAIKU,
                cost_micro_usd=1_500_000,
                idempotency_key="spent-this-month",
            )
        )
        await session.commit()
    # $3.00 a month: $1.50 spent + $1.00 reserved leaves $0.50.
    asked = await front.build(budget_usd=2.0)
    assert asked.status_code == 402 and asked.json()["limit"] == "monthly_spend", asked.text
    assert "$0.50 is left" in asked.json()["detail"]
    raised = await front.http.post(f"/api/builds/{made.json()['id']}/budget", json={"add_usd": 1})
    assert raised.status_code == 402 and raised.json()["limit"] == "monthly_spend", raised.text
    shrunk = await front.build()  # the default budget shrinks to what is left
    assert shrunk.status_code == 202 and shrunk.json()["budget"]["limit_usd"] == 0.5, shrunk.text
    empty = await front.acting_as("u1").build()
    assert empty.status_code == 429  # two running: the concurrency limit comes first


async def test_a_held_owner_starts_nothing(front: Front) -> None:
    assert (await front.build()).status_code == 202
    await front.set_user("u1", billing_hold=True)
    held = await front.build()
    assert held.status_code == 402 and held.json()["limit"] == "payment", held.text
    assert "billing portal" in held.json()["detail"]
    assert await front.builds("u1") == 1


async def test_an_idempotency_key_answers_its_first_build(front: Front) -> None:
    answers = await asyncio.gather(*(front.build(key="k-1") for _ in range(4)))
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert await front.builds("u1") == 1
    other = await front.build(key="k-1", goal="something else")
    assert other.status_code == 409 and "another request body" in other.json()["detail"]
    # Keys are the caller's own: another owner's same key starts their own build.
    theirs = await front.acting_as("u2").build(key="k-1")
    assert theirs.status_code == 202 and theirs.json()["id"] != answers[0].json()["id"]
