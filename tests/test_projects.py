"""Projects: how a workspace's language, install step and test command are told from its files;
and a project's link to a GitHub repository (linked, or created by the App), only through an
installation of the App that its user claimed."""

from __future__ import annotations

import json
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.sandbox.projects import BadManifest, detect, parse_counts
from api.deps import User, get_current_user
from api.main import create_app
from cofounder.db import GitHubInstallation, GitHubRepository
from cofounder.settings import Settings
from tests.github_fixtures import InstalledApp

Sessions = async_sessionmaker[AsyncSession]
ORG_INSTALLATION = 31337  # the `github` fixture's, on the organisation acme
USER_INSTALLATION = 4242  # on the personal account alice
CREATE = {"create": {"owner": "acme", "name": "shop", "private": True}}
CREATIONS = "POST /orgs/{org}/repos"


def test_python_requirements_install_into_the_workspace_from_the_index() -> None:
    project = detect({"requirements.txt": b"requests\n"}, index_url="http://index/simple")
    assert project.language == "python" and project.test_command.startswith("python3 -m pytest")
    assert project.install_command is not None
    assert "--target .deps" in project.install_command
    assert project.install_command.endswith("--index-url http://index/simple -r requirements.txt")
    assert project.env["PYTHONPATH"] == ".deps"


def test_pyproject_dependencies_are_installed_and_quoted() -> None:
    toml = b'[project]\nname = "x"\ndependencies = ["attrs>=23", "rich; python_version>\'3\'"]\n'
    project = detect({"pyproject.toml": toml})
    assert project.install_command is not None
    # Each requirement reaches pip as one argument, whatever shell characters it holds.
    assert shlex.split(project.install_command)[-2:] == ["attrs>=23", "rich; python_version>'3'"]
    assert detect({"app.py": b"x = 1\n"}).install_command is None


def test_the_install_marker_changes_with_the_manifests_only() -> None:
    one = detect({"requirements.txt": b"a\n", "app.py": b"1"})
    assert (
        one.manifest_digest == detect({"requirements.txt": b"a\n", "app.py": b"2"}).manifest_digest
    )
    assert one.manifest_digest != detect({"requirements.txt": b"b\n"}).manifest_digest
    assert one.marker == ".deps/.cofounder-installed"


def test_node_projects() -> None:
    with_deps = {"dependencies": {"left-pad": "1.3.0"}, "scripts": {"test": "jest"}}
    project = detect({"package.json": json.dumps(with_deps).encode()}, registry="http://npm")
    assert (project.language, project.test_command) == ("node", "npm test --silent")
    assert project.install_command == (
        "npm install --no-audit --no-fund --no-update-notifier --registry http://npm"
    )
    assert project.deps_dir == "node_modules"
    bare = detect({"package.json": b"{}"})
    assert bare.install_command is None and bare.test_command == "node --test"


@pytest.mark.parametrize(
    "files", [{"package.json": b"{not json"}, {"pyproject.toml": b"[project\n"}]
)
def test_a_broken_manifest_is_a_clear_error(files: dict[str, bytes]) -> None:
    with pytest.raises(BadManifest, match="not valid"):
        detect(files)


def test_counts_from_pytest_and_node() -> None:
    assert parse_counts(b"1 failed, 2 passed, 1 error in 1.20s\n") == (2, 2)
    assert parse_counts(b"# tests 3\n# pass 2\n# fail 1\n# cancelled 0\n") == (2, 1)
    assert parse_counts(b"\xe2\x84\xb9 pass 4\n\xe2\x84\xb9 fail 0\n") == (4, 0)
    assert parse_counts(b"crashed before any runner\n") == (0, 0)


@dataclass
class Front:
    """The API in-process, acting as one user at a time."""

    app: FastAPI
    http: httpx.AsyncClient

    def acting_as(self, user: str) -> Front:
        self.app.dependency_overrides[get_current_user] = lambda: User(id=user)
        return self

    async def claim(self, installation_id: int) -> httpx.Response:
        return await self.http.post(f"/api/github/installations/{installation_id}/claim")

    async def link(self, project: str, body: dict[str, object]) -> httpx.Response:
        return await self.http.put(f"/api/projects/{project}/repository", json=body)


@asynccontextmanager
async def front_for(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[Front]:
    app = create_app(settings, client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield Front(app, http)


def with_app(settings: Settings, github: InstalledApp, api_url: str | None = None) -> Settings:
    return settings.model_copy(
        update={
            "github_app_id": github.app_id,
            "github_private_key": SecretStr(github.private_key_pem),
            "github_api_url": api_url or github.api_url,
        }
    )


@pytest_asyncio.fixture
async def front(
    settings: Settings, github: InstalledApp, env: WorkflowEnvironment, sessions: Sessions
) -> AsyncIterator[Front]:
    """The API with the App configured; the App installed on the organisation acme and the
    personal account alice, as their webhooks recorded, and claimed by nobody yet."""
    github.double.add_installation(USER_INSTALLATION, "alice", account_type="User")
    await record_installation(sessions, ORG_INSTALLATION, "acme", "Organization")
    await record_installation(sessions, USER_INSTALLATION, "alice", "User")
    async with front_for(with_app(settings, github), env) as served:
        yield served


async def record_installation(
    sessions: Sessions, installation_id: int, account: str, kind: str, suspended: bool = False
) -> None:
    async with sessions() as session:
        row = GitHubInstallation(
            id=installation_id, account=account, account_type=kind, suspended=suspended
        )
        session.add(row)
        await session.commit()


async def recorded_repositories(sessions: Sessions) -> list[tuple[int, str]]:
    async with sessions() as session:
        rows = (await session.scalars(select(GitHubRepository))).all()
    return [(row.installation_id, row.full_name) for row in rows]


async def test_the_app_creates_a_repository_once_and_links_it(
    front: Front, github: InstalledApp, sessions: Sessions
) -> None:
    assert (await front.claim(ORG_INSTALLATION)).status_code == 200
    made = await front.link("shop", CREATE)
    assert made.status_code == 200, made.text
    linked = {"project": "shop", "repository": "acme/shop", "installation_id": ORG_INSTALLATION}
    assert made.json() == linked
    # A private repository with a README on main, for builds to start from.
    repo = github.double.repository("acme/shop")
    assert repo.private and list(github.double.branches("acme/shop")) == ["main"]
    assert await recorded_repositories(sessions) == [(ORG_INSTALLATION, "acme/shop")]

    # Asked again (a retried request): GitHub says the name is taken, the App finds it there.
    again = await front.link("shop", CREATE)
    assert (again.status_code, again.json()) == (200, linked)
    assert github.double.counts.repositories_created == 1
    assert github.double.counts.requests[CREATIONS] == 2
    assert await recorded_repositories(sessions) == [(ORG_INSTALLATION, "acme/shop")]
    assert (await front.http.get("/api/projects/shop")).json() == linked


async def test_a_personal_accounts_repository_is_made_by_its_owner_then_linked(
    front: Front, github: InstalledApp
) -> None:
    assert (await front.claim(USER_INSTALLATION)).status_code == 200
    body = {"create": {"owner": "alice", "name": "shop"}}
    refused = await front.link("shop", body)
    assert refused.status_code == 409
    assert "create alice/shop on GitHub" in refused.json()["detail"]
    assert github.double.counts.requests[CREATIONS] == 0


async def test_the_first_claim_of_an_installation_wins(front: Front, sessions: Sessions) -> None:
    first = await front.acting_as("ann").claim(ORG_INSTALLATION)
    assert first.status_code == 200
    assert first.json() == {
        "installation_id": ORG_INSTALLATION,
        "account": "acme",
        "account_type": "Organization",
        "suspended": False,
    }
    assert (await front.claim(ORG_INSTALLATION)).status_code == 200  # ann's again: the same
    taken = await front.acting_as("bob").claim(ORG_INSTALLATION)
    assert taken.status_code == 409 and "another user" in taken.json()["detail"]
    assert (await front.claim(999)).status_code == 404
    async with sessions() as session:
        installation = await session.get(GitHubInstallation, ORG_INSTALLATION)
    assert installation is not None and installation.owner == "ann"


async def test_nobody_links_or_creates_through_an_installation_they_did_not_claim(
    front: Front, github: InstalledApp, sessions: Sessions
) -> None:
    github.double.add_repository("acme/site", ORG_INSTALLATION)
    async with sessions() as session:
        session.add(GitHubRepository(id=7, installation_id=ORG_INSTALLATION, full_name="acme/site"))
        await session.commit()
    # Unclaimed: nobody's yet.
    assert (await front.link("site", {"repository": "acme/site"})).status_code == 404
    assert (await front.acting_as("ann").claim(ORG_INSTALLATION)).status_code == 200

    bob = front.acting_as("bob")
    link = await bob.link("site", {"repository": "acme/site"})
    create = await bob.link("shop", CREATE)
    unknown = "the GitHub App has no installation with acme/site for this user"
    assert (link.status_code, link.json()["detail"]) == (404, unknown)
    assert create.status_code == 404 and "on acme for this user" in create.json()["detail"]
    assert github.double.counts.requests[CREATIONS] == 0
    assert (await bob.http.get("/api/projects/site")).status_code == 404  # nothing made for bob
    assert (await front.acting_as("ann").link("site", {"repository": "acme/site"})).is_success


async def test_a_suspended_installation_links_nothing(
    front: Front, github: InstalledApp, sessions: Sessions
) -> None:
    await record_installation(sessions, 77, "umbrella", "Organization", suspended=True)
    assert (await front.claim(77)).status_code == 200
    body = {"create": {"owner": "umbrella", "name": "shop"}}
    refused = await front.link("shop", body)
    assert refused.status_code == 409 and "suspended" in refused.json()["detail"]
    assert github.double.counts.requests[CREATIONS] == 0


async def test_without_an_app_nothing_is_created(
    settings: Settings, env: WorkflowEnvironment, sessions: Sessions
) -> None:
    await record_installation(sessions, ORG_INSTALLATION, "acme", "Organization")
    async with front_for(settings, env) as front:
        assert (await front.claim(ORG_INSTALLATION)).status_code == 200
        refused = await front.link("shop", CREATE)
    assert refused.status_code == 409 and "GITHUB_APP_ID" in refused.json()["detail"]


async def test_github_unreachable_is_a_503(
    settings: Settings, github: InstalledApp, env: WorkflowEnvironment, sessions: Sessions
) -> None:
    await record_installation(sessions, ORG_INSTALLATION, "acme", "Organization")
    nowhere = with_app(settings, github, api_url="http://127.0.0.1:9/api/v3/")
    async with front_for(nowhere, env) as front:
        assert (await front.claim(ORG_INSTALLATION)).status_code == 200
        failed = await front.link("shop", CREATE)
        assert (await front.http.get("/api/projects/shop")).status_code == 404  # nothing linked
    assert failed.status_code == 503 and "unreachable" in failed.json()["detail"]
