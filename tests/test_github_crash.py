"""A worker killed while GitHub takes the build's push, or opens its pull request: it happened,
but the worker never heard so. The retry on a new worker finds its branch and its pull request
instead of making new ones."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from cofounder.db import Project
from cofounder.payloads import BuildStatus, RepositoryLink
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.github_fixtures import InstalledApp, slugkit_on_github
from tests.helpers import model_stats, retried_activities, side_effects, start_build
from tests.processes import BUILD_DEADLINE, Processes

REPOSITORY = "acme/slugs"
PULLS = "POST /repos/{owner}/{repo}/pulls"
PUSH = "git-receive-pack"


@pytest.mark.parametrize("held", [PUSH, PULLS], ids=["during the push", "during the PR"])
async def test_a_worker_killed_while_publishing_makes_one_branch_and_one_pull_request(
    held: str,
    crash_settings: Settings,
    processes: Processes,
    sessions,
    offline_model: str,
    github: InstalledApp,
) -> None:
    await slugkit_on_github(github, sessions, REPOSITORY)
    async with sessions() as session:
        project = Project(owner="local", slug="demo", repository=REPOSITORY)
        project.installation_id = github.installation_id
        session.add(project)
        await session.commit()
    app = {
        "GITHUB_APP_ID": str(github.app_id),
        "GITHUB_PRIVATE_KEY": github.private_key_pem,
        "GITHUB_API_URL": github.api_url,
    }
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
