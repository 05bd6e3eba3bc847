"""A build's hard dollar budget: a call whose worst case passes what is left is not made; the
build waits in awaiting_budget for an extension, or is cancelled when none comes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.journal import worst_case
from activities.ledger import build_usage
from api.main import create_app
from cofounder.payloads import Budget, BudgetExtension, BuildStatus
from cofounder.settings import ModelPrice, Settings
from tests.conftest import ServerThread
from tests.helpers import api_status, inject_faults, start_build, wait_for_status
from workflows.build import BuildWorkflow

# Enough for the plan and a few coder turns, never for the whole demo build.
SMALL = 60_000


def test_the_worst_case_counts_every_input_byte_and_all_output() -> None:
    price = ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.3)
    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "x" * 3000}]}
    cost = worst_case(body, price)
    assert 15_000 + 1000 * 3.75 < cost < 15_000 + 1100 * 3.75
    longer = {**body, "messages": [*body["messages"], {"role": "user", "content": "y" * 3000}]}
    assert worst_case(longer, price) > cost


async def test_a_build_waits_for_budget_then_goes_on_when_extended(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(
        env.client, settings, sessions, budget=Budget(limit_micro_usd=SMALL, wait_seconds=600)
    )
    view = await wait_for_status(handle, BuildStatus.AWAITING_BUDGET, timeout=60)
    assert view.budget_needed_micro_usd and view.budget_micro_usd == SMALL
    spent = await build_usage(sessions, view.build_id)
    assert spent.cost_micro_usd == view.cost.cost_micro_usd <= SMALL  # never past the limit
    assert spent.cost_micro_usd + view.budget_needed_micro_usd > SMALL  # the call that waits

    extended = await handle.execute_update(
        BuildWorkflow.extend_budget, BudgetExtension(add_micro_usd=5_000_000)
    )
    assert extended.budget_micro_usd == SMALL + 5_000_000
    final = await handle.result()
    assert final.status == BuildStatus.SUCCEEDED
    assert set(final.cost_by_role) == {"architect", "coder", "debugger", "reviewer"}
    assert sum(u.cost_micro_usd for u in final.cost_by_role.values()) == final.cost.cost_micro_usd


async def test_a_model_that_always_goes_on_is_stopped_by_the_budget(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, *[{"endless": True, "role": "coder"}] * 200)
    budget = Budget(limit_micro_usd=400_000, wait_seconds=2)
    handle = await start_build(env.client, settings, sessions, budget=budget, max_turns=200)
    view = await handle.result()
    assert view.status == BuildStatus.CANCELLED
    assert view.last_error is not None and "the budget of $0.40 ran out" in view.last_error
    spent = await build_usage(sessions, view.build_id)
    assert spent.cost_micro_usd <= budget.limit_micro_usd
    assert spent.calls > 10  # it did go on, turn after turn, until the budget said no


async def test_extending_is_refused_without_a_budget_or_after_the_end(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            BuildWorkflow.extend_budget, BudgetExtension(add_micro_usd=1_000)
        )
    assert "no budget to extend" in str(refused.value.cause)
    await handle.result()


async def test_the_api_takes_a_budget_shows_the_wait_and_extends_it(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    with ServerThread(create_app(settings, client=env.client)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # Enough for the architect's call (Opus: up to ~$0.21), not for the reviewer's
            # after the coding has spent some.
            started = await http.post(
                "/api/builds",
                json={"project": "demo", "goal": "a slug library", "budget_usd": 0.22},
            )
            assert started.status_code == 202, started.text
            build_id = started.json()["id"]
            for _ in range(300):
                build = (await http.get(f"/api/builds/{build_id}")).json()
                if build["status"] == "awaiting_budget":
                    break
                await asyncio.sleep(0.1)
            assert build["status"] == "awaiting_budget", build
            budget = build["budget"]
            assert budget["limit_usd"] == 0.22 and budget["needed_usd"] > budget["remaining_usd"]
            assert (
                0 <= budget["remaining_usd"] < 0.22 and "architect" in budget["spent_by_role_usd"]
            )

            refused = await http.post(f"/api/builds/{build_id}/budget", json={"add_usd": -1})
            assert refused.status_code == 422
            extended = await http.post(f"/api/builds/{build_id}/budget", json={"add_usd": 5})
            assert extended.status_code == 200, extended.text
            assert extended.json()["budget"]["limit_usd"] == 5.22
            handle = env.client.get_workflow_handle(started.json()["workflow_id"])
            await api_status(http, build_id, "in_review")
            # Its pull request closed, the build's review session ends, and with it the build.
            closed = await http.post(f"/api/builds/{build_id}/pull-request/close")
            assert closed.status_code == 200, closed.text
            assert (await handle.result())["status"] == "closed"
            late = await http.post(f"/api/builds/{build_id}/budget", json={"add_usd": 1})
            assert late.status_code == 409
            # Ended, the build still shows its budget: the limit kept in its row, the spend per
            # role from the ledger.
            ended = (await http.get(f"/api/builds/{build_id}")).json()
            spent = ended["budget"]["spent_by_role_usd"]
            assert ended["budget"]["limit_usd"] == 5.22
            assert set(spent) == {"architect", "coder", "debugger", "reviewer"}
            assert abs(sum(spent.values()) - ended["cost"]["usd"]) < 1e-6
            assert abs(ended["budget"]["remaining_usd"] - (5.22 - ended["cost"]["usd"])) < 1e-6
