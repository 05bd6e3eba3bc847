"""A project linked to a GitHub repository: its build starts from the repository's default
branch (mirrored into the project's remote), and its pull request is opened on GitHub, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cofounder.cli.builds import report
from cofounder.db import PullRequest
from cofounder.settings import Settings
from tests.github_fixtures import SECRET, InstalledApp, deliver, slugkit_on_github
from tests.helpers import api_status, count
from worker import running_worker

GOAL = "Let slugify cut long slugs to a maximum length"
REPOSITORY = "acme/slugs"


@pytest_asyncio.fixture
async def linked(
    settings: Settings,
    github: InstalledApp,
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker with the App configured; the App installed on acme, which has the
    repository with slugkit on main (as a merged first build would have left it)."""
    await slugkit_on_github(github, sessions, REPOSITORY, GOAL)
    with_app = settings.model_copy(
        update={
            "github_app_id": github.app_id,
            "github_private_key": SecretStr(github.private_key_pem),
            "github_api_url": github.api_url,
            "github_webhook_secret": SecretStr(SECRET),
            # A review's webhooks come within a moment: awaited together, as in production.
            "review_settle_seconds": 1.0,
        }
    )
    served = create_app(with_app, client=env.client)
    async with served.router.lifespan_context(served), running_worker(env.client, with_app):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def merged_event(github: InstalledApp, number: int, sha: str) -> dict[str, Any]:
    """The `pull_request` webhook GitHub sends when pull request `number` is merged."""
    return {
        "action": "closed",
        "number": number,
        "pull_request": {"number": number, "merged": True, "merge_commit_sha": sha},
        "repository": {"id": 7, "full_name": REPOSITORY},
        "installation": {"id": github.installation_id},
        "sender": {"login": "maria", "type": "User"},
    }


async def test_a_linked_projects_build_opens_its_pull_request_on_github(
    linked: httpx.AsyncClient,
    github: InstalledApp,
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The user who installed the App claims its installation; only then do its repositories link.
    claimed = await linked.post(f"/api/github/installations/{github.installation_id}/claim")
    assert claimed.status_code == 200, claimed.text
    unknown = await linked.put("/api/projects/slugs/repository", json={"repository": "acme/other"})
    assert (
        unknown.status_code == 404 and "no installation with acme/other" in unknown.json()["detail"]
    )
    link = await linked.put("/api/projects/slugs/repository", json={"repository": REPOSITORY})
    assert link.status_code == 200, link.text
    assert link.json() == {
        "project": "slugs",
        "repository": REPOSITORY,
        "installation_id": github.installation_id,
    }

    started = await linked.post("/api/builds", json={"project": "slugs", "goal": GOAL})
    assert started.status_code == 202, started.text
    build = started.json()
    handle = env.client.get_workflow_handle(build["workflow_id"])
    await api_status(linked, build["id"], "in_review", timeout=120)

    # It started from GitHub's main: the architect planned the feature on the code it found.
    plan = (await linked.get(f"/api/builds/{build['id']}/plan")).json()
    assert "slugkit/__init__.py" in plan["steps"][0]["title"]

    # One branch and one pull request on GitHub, recorded with its number and page.
    [pull] = github.double.pulls(REPOSITORY)
    assert (pull.head, pull.base) == (f"cofounder/{build['id']}", "main")
    assert github.double.counts.pulls_created == 1
    assert github.double.counts.branches_created[REPOSITORY] == 1
    final = (await linked.get(f"/api/builds/{build['id']}")).json()
    assert final["pull_request"]["provider"] == "github"
    assert final["pull_request"]["url"].endswith(f"/{REPOSITORY}/pull/{pull.number}")
    shown = (await linked.get(f"/api/builds/{build['id']}/pull-request")).json()
    assert (shown["number"], shown["head_sha"]) == (pull.number, pull.head_sha)
    changed = [
        line.split(" b/")[-1] for line in shown["diff"].splitlines() if line.startswith("diff")
    ]
    assert changed == ["README.md", "slugkit/__init__.py", "tests/test_max_length.py"]
    assert await count(sessions, PullRequest) == 1
    # It is merged on GitHub, not into the project's local mirror; GitHub's webhook says so.
    refused = await linked.post(f"/api/builds/{build['id']}/pull-request/merge")
    assert refused.status_code == 409 and "merge it there" in refused.json()["detail"]
    sha = github.double.merge_pull(REPOSITORY, pull.number)
    answer = await deliver(linked, "pull_request", merged_event(github, pull.number, sha))
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
    merged = (await linked.get(f"/api/builds/{build['id']}/pull-request")).json()
    assert (merged["state"], merged["merge_commit_sha"]) == ("merged", sha)
    # The same webhook ends the build's review session.
    assert (await handle.result())["status"] == "merged"


def test_the_cli_points_at_a_github_pull_request(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://github.com/{REPOSITORY}/pull/3"
    pr = {"id": 1, "title": "t", "branch": "cofounder/b", "base": "main", "url": url}
    build = {"id": "b", "status": "succeeded", "workflow_id": "build-b", "project": "slugs"}
    report(settings, {**build, "pull_request": pr})
    shown = capsys.readouterr().out
    assert f"  on GitHub: {url}" in shown and "cofounder merge" not in shown
    report(settings, {**build, "pull_request": {**pr, "url": None}})
    assert "cofounder merge b" in capsys.readouterr().out
