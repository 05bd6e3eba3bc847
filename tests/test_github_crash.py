"""A worker killed while GitHub takes the build's push, or opens its pull request, or takes an
iteration's push or reply: it happened, but the worker never heard so. The retry on a new
worker finds its branch, its pull request, its commit and its reply instead of making new ones."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from cofounder.db import Project
from cofounder.payloads import BuildStatus, BuildView, Feedback, RepositoryLink, ReviewSettings
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.github_fixtures import InstalledApp, slugkit_on_github
from tests.helpers import (
    model_stats,
    retried_activities,
    side_effects,
    start_build,
    wait_for_status,
)
from tests.processes import BUILD_DEADLINE, Processes
from workflows.build import BuildWorkflow

REPOSITORY = "acme/slugs"
PULLS = "POST /repos/{owner}/{repo}/pulls"
PUSH = "git-receive-pack"
REPLY = "POST /repos/{owner}/{repo}/issues/{number}/comments"


@pytest.mark.parametrize("held", [PUSH, PULLS], ids=["during the push", "during the PR"])
async def test_a_worker_killed_while_publishing_makes_one_branch_and_one_pull_request(
    held: str,
    crash_settings: Settings,
    processes: Processes,
    sessions,
    offline_model: str,
    github: InstalledApp,
) -> None:
    app = await linked_project(github, sessions)
    github.double.hold_answer(held, 15)  # done on GitHub, then no answer for a while
    processes.temporal()
    first = processes.worker(env=app)
    client = await connect(crash_settings)
    link = RepositoryLink(repository=REPOSITORY, installation_id=github.installation_id)
    handle = await start_build(client, crash_settings, sessions, repository=link)

    done = github.double.counts
    while (done.pushes if held == PUSH else done.pulls_created) == 0:
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # it happened on GitHub; the worker never knew
    first.wait()
    processes.worker(env=app)

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    assert "publish" in retried_activities(await handle.fetch_history())
    counts = github.double.counts
    assert (counts.pulls_created, counts.pushes, counts.branches_created[REPOSITORY]) == (1, 1, 1)
    [pull] = github.double.pulls(REPOSITORY)
    assert view.pull_request is not None and view.pull_request.number == pull.number
    effects = await side_effects(sessions, view.build_id)
    assert effects == {"pull_requests": 1, "ledger_rows": model_stats(offline_model)["served"]}


CODING = "coding"


async def recovering_view(handle: WorkflowHandle[Any, BuildView]) -> BuildView | None:
    """The build's live view, or None while its killed worker's workflow task still holds the
    query (the server may then cancel it) until that task times out and another worker has it."""
    try:
        return await handle.query(BuildWorkflow.status)
    except RPCError:
        return None


@pytest.mark.parametrize(
    "held", [CODING, PUSH, REPLY], ids=["while coding", "during its push", "during its reply"]
)
async def test_a_worker_killed_during_an_iteration_pushes_and_replies_once(
    held: str,
    crash_settings: Settings,
    processes: Processes,
    sessions,
    offline_model: str,
    github: InstalledApp,
) -> None:
    app = await linked_project(github, sessions)
    processes.temporal()
    first = processes.worker(env=app)
    client = await connect(crash_settings)
    link = RepositoryLink(repository=REPOSITORY, installation_id=github.installation_id)
    review = ReviewSettings(settle_seconds=0)
    handle = await start_build(client, crash_settings, sessions, repository=link, review=review)
    await wait_for_status(handle, BuildStatus.IN_REVIEW, timeout=BUILD_DEADLINE)

    if held != CODING:
        github.double.hold_answer(held, 15)  # the iteration's push or reply lands, unanswered
    said = Feedback(id="api:1", kind="api", author="maria", body="Mention the Python version")
    await handle.signal(BuildWorkflow.feedback, said)
    counts = github.double.counts
    if held == CODING:  # between the coder's turns in the sandbox
        await wait_for_status(handle, BuildStatus.CODING, timeout=BUILD_DEADLINE)
    while held == PUSH and counts.pushes < 2 or held == REPLY and counts.comments_created < 1:
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    processes.worker(env=app)

    deadline = asyncio.get_running_loop().time() + BUILD_DEADLINE
    while not (view := await recovering_view(handle)) or (
        not view.iterations or view.iterations[0].status == "running"
    ):
        assert asyncio.get_running_loop().time() < deadline, view
        await asyncio.sleep(0.1)
    assert view.iterations[0].status == "pushed"
    if held != CODING:
        assert "publish_iteration" in retried_activities(await handle.fetch_history())
    counts = github.double.counts
    # One pull request and branch, the publish's push and the iteration's, one reply.
    assert (counts.pulls_created, counts.branches_created[REPOSITORY]) == (1, 1)
    assert (counts.pushes, counts.comments_created) == (2, 1)
    assert (
        view.iterations[0].head_sha
        == github.double.branches(REPOSITORY)[f"cofounder/{view.build_id}"]
    )
    # One ledger row per model answer: an answer lost with the killed worker is asked again
    # (the same request, the same answer) and billed once.
    effects = await side_effects(sessions, view.build_id)
    answers = model_stats(offline_model)["distinct_answers"]
    assert effects == {"pull_requests": 1, "ledger_rows": answers}
    await handle.cancel()


async def linked_project(github: InstalledApp, sessions) -> dict[str, str]:
    """Project `demo` linked to slugkit on the double; the worker's settings for the App."""
    await slugkit_on_github(github, sessions, REPOSITORY)
    async with sessions() as session:
        project = Project(owner="local", slug="demo", repository=REPOSITORY)
        project.installation_id = github.installation_id
        session.add(project)
        await session.commit()
    return {
        "GITHUB_APP_ID": str(github.app_id),
        "GITHUB_PRIVATE_KEY": github.private_key_pem,
        "GITHUB_API_URL": github.api_url,
    }
