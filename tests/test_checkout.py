"""A build starts from its project's main: open_sandbox checks it out into the new session, on
both runtimes, with real git."""

from __future__ import annotations

import subprocess

from temporalio.testing import ActivityEnvironment

from activities.sandbox import SandboxRuntime
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.sessions import reconnect
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import SandboxRef, SandboxRequest
from cofounder.settings import Settings
from tests.remotes import commit_to_main, git
from tests.sandbox_runtimes import destroy

OWNER, PROJECT = "alice", "shop"
MAIN_FILES = {
    "slugkit/__init__.py": b"def slugify(text):\n    return text.lower()\n",
    "tests/test_slugify.py": b"from slugkit import slugify\n",
    "README.md": b"# shop\n",
}


async def open_sandbox(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime, build_id: str = "b-co"
) -> SandboxRef:
    activities = SandboxActivities(settings, store, runtime)
    request = SandboxRequest(build_id=build_id, owner=OWNER, project=PROJECT)
    return await ActivityEnvironment().run(activities.open_sandbox, request)


async def test_a_build_starts_from_the_files_of_main(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    # What git tracks is checked out; links, installed dependencies and .git are not.
    extra = {"node_modules/dep/index.js": b"//\n"}
    main = await commit_to_main(
        settings, OWNER, PROJECT, MAIN_FILES | extra, links={"link.py": "/etc/passwd"}
    )

    ref = await open_sandbox(settings, store, runtime)

    assert ref.base_commit == main
    session = await runtime.connect(ref.session_id)
    assert await session.snapshot() == MAIN_FILES
    assert ref.snapshot_ref is not None
    assert await store.for_owner(OWNER).get_tree(ref.snapshot_ref) == MAIN_FILES
    assert not any(path.startswith(".git") for path in await session.list_files())


async def test_a_retried_open_keeps_the_workspace_and_its_base(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    await commit_to_main(settings, OWNER, PROJECT, MAIN_FILES)
    first = await open_sandbox(settings, store, runtime)
    session = await runtime.connect(first.session_id)
    # An earlier attempt was cut short (one file never written) and something already changed
    # a file; meanwhile main moved on.
    await session.delete_files(["README.md"])
    await session.write_files({"slugkit/__init__.py": b"changed\n"})
    await commit_to_main(settings, OWNER, PROJECT, {"later.py": b"x = 1\n"})

    again = await open_sandbox(settings, store, runtime)

    assert again == first  # the same session, base and snapshot
    files = await session.snapshot()
    assert files == MAIN_FILES | {"slugkit/__init__.py": b"changed\n"}
    assert "later.py" not in files


async def test_without_a_main_the_workspace_starts_empty(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    ref = await open_sandbox(settings, store, runtime, build_id="b-none")
    assert (ref.base_commit, ref.snapshot_ref) == (None, None)
    assert await (await runtime.connect(ref.session_id)).list_files() == {}

    # A remote with no commit at all is no different.
    remote = settings.git_remote(OWNER, PROJECT)
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    ref = await open_sandbox(settings, store, runtime, build_id="b-empty")
    assert (ref.base_commit, ref.snapshot_ref) == (None, None)
    assert await (await runtime.connect(ref.session_id)).list_files() == {}


async def test_a_sandbox_lost_before_its_first_test_run_comes_back_with_the_base(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    await commit_to_main(settings, OWNER, PROJECT, MAIN_FILES)
    ref = await open_sandbox(settings, store, runtime)
    await destroy(runtime, ref.session_id)

    owned = store.for_owner(OWNER)
    session, replaced = await reconnect(runtime, owned, ref, "b-co", OWNER, PROJECT)

    assert replaced.generation == 1 and replaced.base_commit == ref.base_commit
    assert await session.snapshot() == MAIN_FILES


async def test_the_base_is_pinned_in_the_remote_out_of_sight(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    main = await commit_to_main(settings, OWNER, PROJECT, MAIN_FILES)
    await open_sandbox(settings, store, runtime)
    remote = settings.git_remote(OWNER, PROJECT)
    assert git(remote, "rev-parse", "refs/cofounder/bases/b-co").strip() == main
    assert git(remote, "for-each-ref", "--format=%(refname)", "refs/heads/").split() == [
        "refs/heads/main"
    ]
