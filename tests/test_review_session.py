"""One durable session per pull request: after the build's first pass it stays in review, and
each batch of feedback is one iteration on the same branch, in order, until the pull request is
merged or closed or the session idles out; long sessions continue as new."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from cofounder.db import BuildEvent, PullRequest, ReviewIteration
from cofounder.offline_model.feedback import SECTION
from cofounder.payloads import (
    BuildStatus,
    BuildView,
    Feedback,
    PullRequestClosed,
    ReviewSettings,
)
from cofounder.settings import Settings
from tests.helpers import (
    activity_types,
    largest_payload,
    record,
    start_build,
    wait_for_status,
)
from tests.processes import demo_git
from workflows.build import BuildWorkflow

QUICK = ReviewSettings(settle_seconds=0)


def asked(text: str, number: int) -> Feedback:
    return Feedback(id=f"api:{number}", kind="api", author="founder", body=text)


async def iterated(
    handle: WorkflowHandle[Any, BuildView], count: int, timeout: float = 60.0
) -> BuildView:
    """The view once `count` iterations are done and the session is back in review."""
    deadline = time.monotonic() + timeout
    while True:
        view = await handle.query(BuildWorkflow.status)
        running = [it for it in view.iterations if it.status == "running"]
        if view.iteration >= count and not running and view.status == "in_review":
            return view
        assert not view.status.terminal, f"session ended {view.status}: {view.last_error}"
        assert time.monotonic() < deadline, f"{count} iterations never done: {view}"
        await asyncio.sleep(0.1)


def branch_log(settings: Settings, branch: str) -> list[str]:
    return demo_git(settings, "log", "--format=%s", branch).splitlines()


async def test_each_feedback_is_an_iteration_on_the_same_branch_until_merged(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, review=QUICK)
    first = await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=90)
    assert first.pull_request is not None
    branch, opened = first.pull_request.branch, first.pull_request.head_sha

    # Nothing runs while the pull request waits: the sandbox is closed, restored when needed.
    assert list((settings.data_dir / "sandboxes").iterdir()) == []
    await handle.signal(BuildWorkflow.feedback, asked("Mention the max_length idea", 1))
    view = await iterated(handle, 1)
    assert list((settings.data_dir / "sandboxes").iterdir()) == []
    await handle.signal(BuildWorkflow.feedback, asked("Say that digits are kept", 2))
    view = await iterated(handle, 2)

    assert [(it.number, it.status) for it in view.iterations] == [(1, "pushed"), (2, "pushed")]
    assert [it.feedback for it in view.iterations] == [
        "@founder: Mention the max_length idea",
        "@founder: Say that digits are kept",
    ]
    # Two commits over the pull request's first, each the answer to one piece of feedback.
    log = branch_log(settings, branch)
    assert log[0].startswith("Iteration 2") and log[1].startswith("Iteration 1")
    assert demo_git(settings, "rev-parse", f"{branch}~2").strip() == opened
    readme = demo_git(settings, "show", f"{branch}:README.md")
    assert f"{SECTION}\n\n- Mention the max_length idea\n- Say that digits are kept\n" in readme
    assert view.pull_request is not None
    assert view.pull_request.head_sha == demo_git(settings, "rev-parse", branch).strip()
    # Each iteration's cost is its own, and the build's total holds them all.
    assert all(it.cost.cost_micro_usd > 0 for it in view.iterations)
    assert view.cost.cost_micro_usd > first.cost.cost_micro_usd + sum(
        it.cost.cost_micro_usd for it in view.iterations[:1]
    )

    await handle.signal(BuildWorkflow.pull_request_closed, PullRequestClosed(merged=True))
    final = await handle.result()
    assert final.status == BuildStatus.MERGED
    await record(handle, "session_build")
    async with sessions() as session:
        rows = (
            await session.scalars(select(ReviewIteration).order_by(ReviewIteration.number))
        ).all()
        pull = await session.scalar(
            select(PullRequest).where(PullRequest.build_id == final.build_id)
        )
    assert [(row.number, row.status) for row in rows] == [(1, "pushed"), (2, "pushed")]
    assert pull is not None and pull.head_sha == final.pull_request.head_sha  # type: ignore[union-attr]


async def test_feedback_during_an_iteration_waits_its_turn_and_repeats_are_dropped(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, review=QUICK)
    await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=90)
    await handle.signal(BuildWorkflow.feedback, asked("first", 1))
    await wait_for_status(handle, BuildStatus.CODING)
    # During the first iteration: a second ask, the first again (a redelivery), and a review's
    # two comments, which come as one batch.
    await handle.signal(BuildWorkflow.feedback, asked("second", 2))
    await handle.signal(BuildWorkflow.feedback, asked("first", 1))
    for n in (3, 4):
        comment = Feedback(
            id=f"c{n}", kind="review_comment", author="alice", body=f"comment {n}", group="r1"
        )
        await handle.signal(BuildWorkflow.feedback, comment)
    assert (await handle.query(BuildWorkflow.status)).queued_feedback == 2
    view = await iterated(handle, 3, timeout=120)
    assert view.iteration == 3 and view.queued_feedback == 0
    assert [it.feedback for it in view.iterations] == [
        "@founder: first",
        "@founder: second",
        "@alice: comment 3 (+1 more)",
    ]
    readme = demo_git(settings, "show", f"{view.pull_request.branch}:README.md")  # type: ignore[union-attr]
    assert "- first\n- second\n- comment 3\n- comment 4\n" in readme
    await handle.signal(BuildWorkflow.pull_request_closed, PullRequestClosed(merged=False))
    assert (await handle.result()).status == BuildStatus.CLOSED


async def test_an_idle_session_expires_and_closes_its_sandbox(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    review = ReviewSettings(settle_seconds=0, idle_seconds=1)
    handle = await start_build(env.client, settings, sessions, review=review)
    final = await handle.result()
    assert final.status == BuildStatus.EXPIRED
    assert final.last_error == "no feedback came within 0:00:01"
    assert "close_sandbox" in activity_types(await handle.fetch_history())


async def test_a_long_session_continues_as_new_with_its_state(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    review = ReviewSettings(settle_seconds=0, iterations_per_run=1)
    handle = await start_build(env.client, settings, sessions, review=review)
    await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=90)
    for n in (1, 2, 3):
        await handle.signal(BuildWorkflow.feedback, asked(f"ask {n}", n))
    # Signals find the session by its workflow id whichever run holds it.
    view = await iterated(handle, 3, timeout=120)
    await handle.signal(BuildWorkflow.feedback, asked("ask 1", 1))  # seen in an earlier run
    await handle.signal(BuildWorkflow.pull_request_closed, PullRequestClosed(merged=True))
    final = await handle.result()
    assert final.status == BuildStatus.MERGED and final.iteration == 3
    await record(env.client.get_workflow_handle(handle.id), "continued_session")
    assert [it.status for it in view.iterations] == ["pushed"] * 3
    runs = {event.run_id for event in await _events(sessions, final.build_id)}
    assert len(runs) >= 3  # the first pass's run, then one per iteration after the first


async def test_an_iteration_over_its_budget_replies_why_and_the_session_goes_on(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    review = ReviewSettings(settle_seconds=0, iteration_budget_micro_usd=1)
    handle = await start_build(env.client, settings, sessions, review=review)
    first = await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=90)
    await handle.signal(BuildWorkflow.feedback, asked("too costly", 1))
    view = await iterated(handle, 1)
    iteration = view.iterations[0]
    assert iteration.status == "failed"
    assert (
        iteration.error is not None
        and "this iteration's budget of $0.00 ran out" in iteration.error
    )
    assert iteration.cost.cost_micro_usd == 0  # refused before any call was made
    assert view.pull_request is not None and first.pull_request is not None
    assert view.pull_request.head_sha == first.pull_request.head_sha
    await handle.signal(BuildWorkflow.pull_request_closed, PullRequestClosed(merged=False))
    assert (await handle.result()).status == BuildStatus.CLOSED


async def _events(sessions, build_id: str) -> list[Any]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(BuildEvent).where(BuildEvent.build_id == build_id))).all()
        )


@pytest.mark.slow
async def test_fifty_iterations_keep_every_run_small_and_in_order(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, review=QUICK)
    await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=90)
    asks = [f"ask {n:02d}" for n in range(1, 51)]
    for n, ask in enumerate(asks, start=1):  # all at once: each waits its turn
        await handle.signal(BuildWorkflow.feedback, asked(ask, n))
    view = await iterated(handle, 50, timeout=600)
    await handle.signal(BuildWorkflow.pull_request_closed, PullRequestClosed(merged=True))
    final = await handle.result()
    assert final.status == BuildStatus.MERGED and final.iteration == 50
    assert [it.number for it in view.iterations] == list(range(31, 51))  # the latest shown
    readme = demo_git(settings, "show", f"{view.pull_request.branch}:README.md")  # type: ignore[union-attr]
    assert "".join(f"- {ask}\n" for ask in asks) in readme
    # One workflow id throughout; every run's history well under Temporal's 2 MB payload.
    runs = [run async for run in env.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 5
    for run in runs:
        history = await env.client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        assert len(history.to_json().encode()) < 2_000_000
        assert largest_payload(history) < 100_000
