"""Publishing to the local git remote, for real: branch, commit over the build's base, diff, PR
row, and idempotency."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import gitcli, gitpush
from activities.gitbase import check_out_base
from activities.gitrepo import ensure_remote
from activities.publish import PublishActivities
from cofounder.artifacts import ArtifactStore
from cofounder.db import PullRequest
from cofounder.payloads import PublishRequest, PullRequestRef, Usage
from cofounder.settings import Settings
from tests import helpers, remotes
from tests.remotes import commit_to_main

Sessions = async_sessionmaker[AsyncSession]
FILES = {
    "slugkit/__init__.py": b"def slugify(text):\n    return '-'.join(text.lower().split())\n",
    "tests/test_slugkit.py": b"from slugkit import slugify\n\n"
    b"def test_it():\n    assert slugify('A b') == 'a-b'\n",
}
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def insert_build(sessions: Sessions, project: str = "demo") -> str:
    """The Project and Build rows the API writes before a build starts."""
    return await helpers.insert_build(sessions, project, goal="slugs", created_at=CREATED)


async def make_request(
    store: ArtifactStore, build_id: str, project: str = "demo"
) -> PublishRequest:
    plan = {"title": "Slugkit", "summary": "A tiny slug library.", "steps": ["Write", "Test"]}
    return PublishRequest(
        build_id=build_id,
        project=project,
        goal="A small library that turns titles into URL slugs",
        title="Add slugkit",
        plan_ref=await store.put_json(plan),
        workspace_ref=await store.put_tree(FILES),
        review_ref=await store.put_json({"approved": True, "summary": "Small and well tested."}),
        test_summary="2 passed in 0.01s",
        attempts=2,
        cost=Usage(calls=4, input_tokens=1200, output_tokens=340, cost_micro_usd=12_345),
    )


async def publish(
    settings: Settings, store: ArtifactStore, sessions: Sessions, request: PublishRequest
) -> PullRequestRef:
    activities = PublishActivities(settings, store, sessions)
    return await ActivityEnvironment().run(activities.publish, request)


def git(remote: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], check=True, capture_output=True, text=True
    ).stdout


def branches(remote: Path) -> list[str]:
    return git(remote, "for-each-ref", "--format=%(refname)", "refs/heads/").split()


async def pull_requests(sessions: Sessions, build_id: str) -> int:
    async with sessions() as session:
        query = select(func.count()).where(PullRequest.build_id == build_id)
        return int(await session.scalar(query) or 0)


async def test_publish_opens_branch_commit_and_pull_request(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    build_id = await insert_build(sessions)
    ref = await publish(settings, store, sessions, await make_request(store, build_id))

    remote = settings.git_remote("local", "demo")
    branch = f"cofounder/{build_id}"
    assert (ref.branch, ref.base, ref.title) == (branch, "main", "Add slugkit")
    assert branches(remote) == ["refs/heads/cofounder/" + build_id, "refs/heads/main"]
    assert git(remote, "rev-parse", branch).strip() == ref.head_sha
    assert git(remote, "rev-list", "--count", f"main..{branch}").strip() == "1"
    files = git(remote, "ls-tree", "-r", "--name-only", ref.head_sha).split()
    assert files == ["README.md", *sorted(FILES)]
    assert (
        git(remote, "show", f"{ref.head_sha}:slugkit/__init__.py").encode()
        == FILES["slugkit/__init__.py"]
    )
    log = git(remote, "log", "-1", "--format=%an <%ae>|%cI|%s", ref.head_sha).strip()
    assert log == f"cofounder <{gitcli.AUTHOR[1]}>|2026-03-01T12:00:00+00:00|Add slugkit"

    async with sessions() as session:
        row = (await session.execute(select(PullRequest))).scalar_one()
    assert (row.id, row.build_id, row.head_sha, row.branch) == (
        ref.id,
        build_id,
        ref.head_sha,
        branch,
    )
    assert "+++ b/slugkit/__init__.py" in row.diff and "README.md" not in row.diff
    for expected in (
        "A small library that turns titles into URL slugs",
        "## Plan: Slugkit",
        "A tiny slug library.",
        "1. Write\n2. Test",
        "Passed after 2 test runs in all",
        "2 passed in 0.01s",
        "Small and well tested.",
        "$0.0123",
        "1,200 input and 340 output tokens",
    ):
        assert expected in row.body


async def test_publish_twice_changes_nothing(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    build_id = await insert_build(sessions)
    request = await make_request(store, build_id)
    first = await publish(settings, store, sessions, request)
    second = await publish(settings, store, sessions, request)
    assert first == second
    remote = settings.git_remote("local", "demo")
    assert len(branches(remote)) == 2
    assert await pull_requests(sessions, build_id) == 1


async def test_crash_between_push_and_row_is_recovered(
    settings: Settings, store: ArtifactStore, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id = await insert_build(sessions)
    request = await make_request(store, build_id)

    async def crash(*args: Any) -> PullRequestRef:
        raise RuntimeError("worker died after the push")

    with monkeypatch.context() as patch:
        patch.setattr(PublishActivities, "_record", crash)
        with pytest.raises(RuntimeError):
            await publish(settings, store, sessions, request)
    remote = settings.git_remote("local", "demo")
    pushed = git(remote, "rev-parse", f"cofounder/{build_id}").strip()
    assert await pull_requests(sessions, build_id) == 0

    ref = await publish(settings, store, sessions, request)
    assert ref.head_sha == pushed
    assert len(branches(remote)) == 2
    assert git(remote, "rev-list", "--count", f"main..cofounder/{build_id}").strip() == "1"
    assert await pull_requests(sessions, build_id) == 1


async def test_failed_push_leaves_nothing_and_is_retryable(
    settings: Settings, store: ArtifactStore, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id = await insert_build(sessions)
    request = await make_request(store, build_id)

    async def refused(*args: Any) -> str:
        raise gitcli.GitFailed("remote: disk full")

    with monkeypatch.context() as patch:
        patch.setattr(gitpush, "_push", refused)
        with pytest.raises(ApplicationError) as caught:
            await publish(settings, store, sessions, request)
    assert caught.value.type == "GitFailed" and not caught.value.non_retryable
    remote = settings.git_remote("local", "demo")
    assert branches(remote) == ["refs/heads/main"]
    assert await pull_requests(sessions, build_id) == 0

    await publish(settings, store, sessions, request)
    assert git(remote, "rev-list", "--count", f"main..cofounder/{build_id}").strip() == "1"
    assert await pull_requests(sessions, build_id) == 1


async def test_retried_commit_is_byte_identical(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    # Lose the branch and the row (a crash before either was durable) and publish again.
    build_id = await insert_build(sessions)
    request = await make_request(store, build_id)
    first = await publish(settings, store, sessions, request)
    remote = settings.git_remote("local", "demo")
    git(remote, "update-ref", "-d", f"refs/heads/cofounder/{build_id}")
    async with sessions() as session:
        await session.delete(await session.get(PullRequest, first.id))
        await session.commit()

    second = await publish(settings, store, sessions, request)
    assert second.head_sha == first.head_sha


async def test_concurrent_first_use_creates_one_identical_remote(
    settings: Settings, tmp_path: Path
) -> None:
    results = await asyncio.gather(*(ensure_remote(settings.git_dir, "race") for _ in range(4)))
    assert len(set(results)) == 1
    heads = {git(results[0], "rev-parse", "main").strip()}
    other = await ensure_remote(tmp_path / "elsewhere", "race")
    heads.add(git(other, "rev-parse", "main").strip())
    assert len(heads) == 1  # deterministic: every worker creates the very same initial commit
    assert sorted(p.name for p in settings.git_dir.iterdir()) == ["race.git"]  # no temp leftovers


async def test_bad_input_and_missing_git_are_permanent(
    settings: Settings, store: ArtifactStore, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id = await insert_build(sessions)
    with pytest.raises(ApplicationError) as caught:
        await publish(
            settings, store, sessions, await make_request(store, build_id, project="../etc")
        )
    assert caught.value.type == "BadRequest" and caught.value.non_retryable

    monkeypatch.setenv("PATH", str(Path(settings.data_dir) / "no-bin"))
    with pytest.raises(ApplicationError) as caught:
        await publish(settings, store, sessions, await make_request(store, build_id))
    assert caught.value.type == "GitUnavailable" and caught.value.non_retryable
    assert await pull_requests(sessions, build_id) == 0


async def test_files_cannot_write_into_git_or_escape(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    for bad in (".git/config", "../outside.txt"):
        build_id = await insert_build(sessions)
        request = (await make_request(store, build_id)).model_copy(
            update={"workspace_ref": await store.put_tree({bad: b"x"})}
        )
        with pytest.raises(ApplicationError) as refused:
            await publish(settings, store, sessions, request)
        assert refused.value.non_retryable and "unsafe path" in str(refused.value)
        assert not (settings.git_dir / "outside.txt").exists()


async def test_two_owners_with_a_project_of_the_same_name_never_share_a_remote(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    for owner in ("user_alice", "user_bob"):
        build_id = await insert_build(sessions)
        request = await make_request(store.for_owner(owner), build_id)
        await publish(settings, store, sessions, request.model_copy(update={"owner": owner}))
        remote = settings.git_remote(owner, "demo")
        assert branches(remote) == [f"refs/heads/cofounder/{build_id}", "refs/heads/main"]


@pytest.mark.parametrize("owner", ["../other", "", "a/b", "x" * 65])
async def test_an_owner_id_that_is_not_a_folder_name_is_refused(
    settings: Settings, store: ArtifactStore, sessions: Sessions, owner: str
) -> None:
    request = (await make_request(store, await insert_build(sessions))).model_copy(
        update={"owner": owner}
    )
    with pytest.raises(ApplicationError) as raised:
        await publish(settings, store, sessions, request)
    assert (raised.value.type, raised.value.non_retryable) == ("BadRequest", True)
    assert not settings.git_dir.exists() or not any(settings.git_dir.iterdir())


async def test_a_build_is_committed_over_its_base_as_the_whole_tree(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    build_id = await insert_build(sessions)
    base = await commit_to_main(settings, "local", "demo", FILES | {"old.py": b"gone = 1\n"})
    await check_out_base(settings.git_remote("local", "demo"), build_id)  # as its sandbox did
    # Main moves on after the build started; the build's commit still sits on its base.
    await commit_to_main(settings, "local", "demo", {"elsewhere.py": b"later = 1\n"})
    workspace = {
        "README.md": remotes.show(settings.git_remote("local", "demo"), base, "README.md"),
        "slugkit/__init__.py": b"def slugify(text):\n    return text\n",
        "slugkit/extra.py": b"EXTRA = 1\n",
    }
    request = (await make_request(store, build_id)).model_copy(
        update={"workspace_ref": await store.put_tree(workspace)}
    )

    ref = await publish(settings, store, sessions, request)

    remote = settings.git_remote("local", "demo")
    assert git(remote, "rev-parse", f"{ref.head_sha}^").strip() == base
    assert git(remote, "rev-list", "--count", f"{base}..{ref.head_sha}").strip() == "1"
    # The workspace is the whole tree: what the build deleted is deleted.
    assert remotes.tree_of(remote, ref.head_sha) == workspace
    async with sessions() as session:
        diff = (await session.execute(select(PullRequest.diff))).scalar_one()
    changed = [line.split(" b/")[-1] for line in diff.splitlines() if line.startswith("diff --git")]
    assert changed == ["old.py", "slugkit/__init__.py", "slugkit/extra.py", "tests/test_slugkit.py"]
    assert "deleted file mode" in diff and "elsewhere.py" not in diff  # against main, from base

    again = await publish(settings, store, sessions, request)
    assert again == ref and await pull_requests(sessions, build_id) == 1
