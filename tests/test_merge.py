"""Merging a build's pull request through the API and the CLI, on a real local remote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from typer.testing import CliRunner

from activities.gitbase import check_out_base
from activities.gitmerge import merge_branch
from activities.publish import PublishActivities
from api.deps import User, get_current_user
from api.main import create_app
from cofounder.artifacts import ArtifactStore
from cofounder.cli import app
from cofounder.payloads import PublishRequest, Usage
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import insert_build
from tests.remotes import commit_to_main, git, head, tree_of

Sessions = async_sessionmaker[AsyncSession]
MODULE = b"def slugify(text):\n    return text.lower()\n"
BASE = {"slugkit/__init__.py": MODULE, "README.md": b"# demo\n"}


@asynccontextmanager
async def api_as(
    settings: Settings, env: WorkflowEnvironment, owner: str = "local"
) -> AsyncIterator[httpx.AsyncClient]:
    served = create_app(settings, client=env.client)
    served.dependency_overrides[get_current_user] = lambda: User(id=owner)
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest_asyncio.fixture
async def http(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_as(settings, env) as client:
        yield client


async def published(
    settings: Settings, store: ArtifactStore, sessions: Sessions, changes: dict[str, bytes]
) -> str:
    """A build that started from main as it is now, changed `changes`, and was published."""
    build_id = await insert_build(sessions)
    base = await check_out_base(settings.git_remote("local", "demo"), build_id)
    assert base is not None
    owned = store.for_owner("local")
    request = PublishRequest(
        build_id=build_id,
        project="demo",
        goal="slugs",
        title=f"Change {', '.join(changes)}",
        plan_ref=await owned.put_json({"title": "Slugs", "steps": []}),
        workspace_ref=await owned.put_tree(base.files | changes),
        review_ref=await owned.put_json({"approved": True, "summary": "Fine."}),
        test_summary="1 passed",
        attempts=1,
        cost=Usage(),
    )
    await ActivityEnvironment().run(PublishActivities(settings, store, sessions).publish, request)
    return build_id


async def merge(http: httpx.AsyncClient, build_id: str) -> httpx.Response:
    return await http.post(f"/api/builds/{build_id}/pull-request/merge")


async def test_main_fast_forwards_to_a_branch_made_from_it_and_again_changes_nothing(
    settings: Settings, store: ArtifactStore, sessions: Sessions, http: httpx.AsyncClient
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    build_id = await published(settings, store, sessions, {"slugkit/extra.py": b"X = 1\n"})
    remote = settings.git_remote("local", "demo")
    branch_head = head(remote, f"cofounder/{build_id}")

    merged = await merge(http, build_id)

    assert merged.status_code == 200, merged.text
    pr = merged.json()
    assert (pr["state"], pr["merge_commit_sha"], pr["head_sha"]) == (
        "merged",
        branch_head,
        branch_head,
    )
    assert pr["merged_at"] is not None and head(remote) == branch_head
    assert (await http.get(f"/api/builds/{build_id}/pull-request")).json() == pr
    again = await merge(http, build_id)
    assert (again.status_code, again.json()) == (200, pr)
    assert head(remote) == branch_head


async def test_a_merge_commit_joins_a_branch_to_a_main_that_moved(
    settings: Settings, store: ArtifactStore, sessions: Sessions, http: httpx.AsyncClient
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    first = await published(settings, store, sessions, {"one.py": b"ONE = 1\n"})
    second = await published(settings, store, sessions, {"two.py": b"TWO = 2\n"})
    assert (await merge(http, first)).status_code == 200
    remote = settings.git_remote("local", "demo")
    before = head(remote)

    response = await merge(http, second)

    assert response.status_code == 200, response.text
    pr = response.json()
    sha = pr["merge_commit_sha"]
    assert sha != pr["head_sha"] and head(remote) == sha
    assert git(remote, "log", "-1", "--format=%P", sha).split() == [before, pr["head_sha"]]
    assert git(remote, "log", "-1", "--format=%an <%ae>|%s", sha).strip() == (
        f"cofounder <cofounder@users.noreply.localhost>|Merge pull request #{pr['id']} "
        f"from cofounder/{second}"
    )
    assert tree_of(remote, "main") == BASE | {"one.py": b"ONE = 1\n", "two.py": b"TWO = 2\n"}


async def test_a_conflict_is_409_and_changes_nothing(
    settings: Settings, store: ArtifactStore, sessions: Sessions, http: httpx.AsyncClient
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    first = await published(settings, store, sessions, {"slugkit/__init__.py": b"one\n"})
    second = await published(settings, store, sessions, {"slugkit/__init__.py": b"two\n"})
    assert (await merge(http, first)).status_code == 200
    remote = settings.git_remote("local", "demo")
    refs_before = git(remote, "for-each-ref")

    refused = await merge(http, second)

    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"build {second} cannot be merged" in detail
    assert (
        "conflicts with main in slugkit/__init__.py" in detail and "nothing was changed" in detail
    )
    assert git(remote, "for-each-ref") == refs_before
    pr = (await http.get(f"/api/builds/{second}/pull-request")).json()
    assert (pr["state"], pr["merged_at"], pr["merge_commit_sha"]) == ("open", None, None)


async def test_a_merge_cut_short_after_git_is_finished_with_the_same_result(
    settings: Settings, store: ArtifactStore, sessions: Sessions, http: httpx.AsyncClient
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    first = await published(settings, store, sessions, {"one.py": b"ONE = 1\n"})
    second = await published(settings, store, sessions, {"two.py": b"TWO = 2\n"})
    assert (await merge(http, first)).status_code == 200
    remote = settings.git_remote("local", "demo")
    # The request that merged it in git died before it recorded the merge.
    done = await merge_branch(remote, f"cofounder/{second}", "merged", "1767225600 +0000")

    response = await merge(http, second)

    assert response.status_code == 200
    assert response.json()["merge_commit_sha"] == done.sha == head(remote)
    assert git(remote, "rev-list", "--count", "--merges", "main").strip() == "1"


async def test_merging_is_404_for_others_and_409_without_a_pull_request(
    settings: Settings,
    store: ArtifactStore,
    sessions: Sessions,
    http: httpx.AsyncClient,
    env: WorkflowEnvironment,
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    build_id = await published(settings, store, sessions, {"one.py": b"ONE = 1\n"})
    unpublished = await insert_build(sessions)

    async with api_as(settings, env, owner="someone-else") as other:
        theirs = await merge(other, build_id)
    assert (theirs.status_code, theirs.json()) == (404, {"detail": f"build {build_id} not found"})
    assert (await merge(http, "nope")).status_code == 404
    missing = await merge(http, unpublished)
    assert missing.status_code == 409 and "has no pull request" in missing.json()["detail"]
    remote = settings.git_remote("local", "demo")
    assert git(remote, "rev-list", "--count", "main").strip() == "2"  # nothing merged


async def test_cofounder_merge_prints_what_it_did(
    settings: Settings, store: ArtifactStore, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    build_id = await published(settings, store, sessions, {"one.py": b"ONE = 1\n"})
    sha = head(settings.git_remote("local", "demo"), f"cofounder/{build_id}")

    with ServerThread(create_app(settings, client=env.client)) as server:
        env_vars = {"COFOUNDER_API_URL": server.url}
        merged = await asyncio.to_thread(CliRunner().invoke, app, ["merge", build_id], env=env_vars)
        unknown = await asyncio.to_thread(CliRunner().invoke, app, ["merge", "nope"], env=env_vars)

    assert merged.exit_code == 0, merged.output
    assert (
        f"build {build_id}: pull request #1 (cofounder/{build_id}) merged into main, "
        f"fast-forward to {sha[:12]}"
    ) in merged.output
    assert unknown.exit_code == 2 and "build nope not found" in unknown.output
