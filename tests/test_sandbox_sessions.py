"""The sandbox session interface, the same tests on both runtimes: bubblewrap on this machine,
and E2B through its real SDK against the local double of its control API and envd."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.sandbox import Command, SandboxGone, SandboxRuntime, SessionSpec
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.bwrap import PASSWD
from activities.sandbox.local import LocalRuntime
from cofounder import payloads
from cofounder.artifacts import ArtifactStore
from cofounder.settings import Settings
from tests.package_index import MODULE, package_index
from tests.sandbox_runtimes import destroy

SPEC = SessionSpec(build_id="b-sessions", owner="alice", project="demo")


async def test_open_is_idempotent_and_close_frees_it(runtime: SandboxRuntime) -> None:
    first = await runtime.open(SPEC)
    again = await runtime.open(SPEC)
    assert first.session_id == again.session_id
    other_owner = await runtime.open(SessionSpec("b-sessions", "bob", "demo"))
    assert other_owner.session_id != first.session_id

    listed = {info.session_id: info.metadata for info in await runtime.list_sessions()}
    assert listed[first.session_id]["cofounder_owner"] == "alice"
    assert listed[first.session_id]["cofounder_build"] == "b-sessions"
    assert listed[other_owner.session_id]["cofounder_owner"] == "bob"

    assert await runtime.close(first.session_id) is True
    with pytest.raises(SandboxGone):
        await runtime.connect(first.session_id)
    assert await runtime.close(first.session_id) is False
    assert (await runtime.connect(other_owner.session_id)).session_id == other_owner.session_id


async def test_files_round_trip(runtime: SandboxRuntime) -> None:
    session = await runtime.open(SPEC)
    binary = bytes(range(256)) * 4
    await session.write_files({"a.txt": b"alpha\n", "pkg/deep/b.bin": binary})
    assert await session.read_file("pkg/deep/b.bin") == binary
    assert await session.list_files() == {"a.txt": 6, "pkg/deep/b.bin": len(binary)}
    await session.delete_files(["a.txt"])
    assert list(await session.list_files()) == ["pkg/deep/b.bin"]
    with pytest.raises(FileNotFoundError):
        await session.read_file("a.txt")
    # The same session, reconnected, still holds its files.
    again = await runtime.connect(session.session_id)
    assert await again.read_file("pkg/deep/b.bin") == binary


async def test_commands_argv_shell_cwd_env_and_streaming(runtime: SandboxRuntime) -> None:
    session = await runtime.open(SPEC)
    await session.write_files({"sub/x.txt": b"in sub\n"})
    argv = await session.run(Command(argv=["cat", "x.txt"], cwd="sub"))
    assert (argv.exit_code, argv.log) == (0, b"in sub\n")
    shell = await session.run(
        Command(shell='echo "$GREETING"; echo oops >&2; exit 3', env={"GREETING": "hi there"})
    )
    assert shell.exit_code == 3
    assert b"hi there" in shell.log and b"oops" in shell.log

    arrived: list[float] = []

    async def on_output(chunk: bytes) -> None:
        arrived.append(time.monotonic())

    started = time.monotonic()
    streamed = await session.run(
        Command(shell="echo first; sleep 1.5; echo second"), on_output=on_output
    )
    ended = time.monotonic()
    assert streamed.log.split() == [b"first", b"second"]
    # The first line came while the command was still sleeping, not with its end.
    assert arrived and arrived[0] - started < ended - started - 1.0


async def test_timeout_and_output_cap(runtime: SandboxRuntime) -> None:
    session = await runtime.open(SPEC)
    slow = await session.run(Command(shell="sleep 30", timeout=1))
    assert slow.timed_out and slow.exit_code != 0
    flood = await session.run(
        Command(shell="yes 0123456789 | head -c 5000000", output_limit=10_000, timeout=30)
    )
    assert flood.truncated and not flood.timed_out
    assert 10_000 < len(flood.log) < 10_000 + 20_000 and b"output truncated" in flood.log


async def test_cancel_kills_the_running_command(runtime: SandboxRuntime) -> None:
    session = await runtime.open(SPEC)
    beat = "while true; do date +%s%N > beat; sleep 0.1; done"
    task = asyncio.create_task(session.run(Command(shell=beat, timeout=60)))
    while "beat" not in await session.list_files():
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = await session.read_file("beat")
    await asyncio.sleep(0.6)
    assert await session.read_file("beat") == last, "the command outlived its cancellation"


async def test_snapshot_and_restore_into_a_new_session(runtime: SandboxRuntime) -> None:
    session = await runtime.open(SPEC)
    await session.write_files({"src/app.py": b"X = 1\n", "node_modules/dep/index.js": b"//\n"})
    await session.run(Command(shell="mkdir -p out && echo made > out/result.txt"))
    files = await session.snapshot()
    assert files == {"src/app.py": b"X = 1\n", "out/result.txt": b"made\n"}

    fresh = await runtime.open(SessionSpec(SPEC.build_id, SPEC.owner, SPEC.project, generation=1))
    await fresh.write_files({"stale.txt": b"from before\n"})
    await fresh.restore(files)
    assert await fresh.snapshot() == files
    assert (await fresh.run(Command(argv=["cat", "out/result.txt"]))).log == b"made\n"


async def run_tests(
    settings: Settings,
    store: ArtifactStore,
    runtime: SandboxRuntime,
    files: dict[str, str],
    sandbox: payloads.SandboxRef | None = None,
) -> payloads.TestReport:
    owned = store.for_owner("alice")
    tree = {path: textwrap.dedent(text).encode() for path, text in files.items()}
    ref = await owned.put_tree(tree)
    activities = SandboxActivities(settings, store, runtime)
    env = ActivityEnvironment()
    if sandbox is None:
        open_request = payloads.SandboxRequest(
            build_id="b-tests", owner="alice", project="demo", workspace_ref=ref
        )
        sandbox = await env.run(activities.open_sandbox, open_request)
    request = payloads.TestRequest(
        build_id="b-tests", owner="alice", project="demo", workspace_ref=ref, sandbox=sandbox
    )
    return await env.run(activities.run_tests, request)


GREETING_TEST = f"""
    from {MODULE} import greet

    def test_greets():
        assert greet("founder") == "hello, founder"
"""


async def test_python_dependency_is_installed_from_the_index(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime, tmp_path: Path
) -> None:
    with package_index(tmp_path / "index") as (url, downloads):
        settings = settings.model_copy(update={"sandbox_package_index": url})
        files = {"requirements.txt": "cofounder-greeting==1.0.0\n", "test_g.py": GREETING_TEST}
        report = await run_tests(settings, store, runtime, files)
        assert report.passed and report.passed_count == 1, report.summary
        # The next run in the same session finds it installed: no second download.
        again = await run_tests(settings, store, runtime, files, report.sandbox)
        assert again.passed and again.sandbox == report.sandbox.model_copy(
            update={"snapshot_ref": again.sandbox.snapshot_ref}
        )
        assert len(downloads) == 1


async def test_node_project_runs_npm_test(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    package = {"name": "demo", "version": "1.0.0", "scripts": {"test": "node --test"}}
    files = {
        "package.json": json.dumps(package),
        "sum.js": "module.exports = (a, b) => a + b;\n",
        "test/sum.test.js": """
            const test = require("node:test");
            const assert = require("node:assert");
            const sum = require("../sum.js");
            test("adds", () => assert.strictEqual(sum(2, 3), 5));
            test("adds negatives", () => assert.strictEqual(sum(-2, -3), -5));
            test("breaks", () => assert.strictEqual(sum(1, 1), 3));
        """,
    }
    report = await run_tests(settings, store, runtime, files)
    assert report.sandbox is not None and report.sandbox.language == "node"
    assert (report.passed, report.passed_count, report.failed_count) == (False, 2, 1)
    assert "breaks" in report.summary


async def test_a_lost_sandbox_is_restored_from_the_last_snapshot(
    settings: Settings, store: ArtifactStore, runtime: SandboxRuntime
) -> None:
    files = {"test_a.py": "def test_a():\n    assert True\n"}
    first = await run_tests(settings, store, runtime, files)
    assert first.passed and first.sandbox is not None and first.sandbox.snapshot_ref
    await destroy(runtime, first.sandbox.session_id)

    second = await run_tests(settings, store, runtime, files, first.sandbox)
    assert second.passed, second.summary
    assert second.sandbox is not None and second.sandbox.generation == 1
    assert second.sandbox.session_id != first.sandbox.session_id


async def test_a_reconnect_leaves_the_sessions_etc_files_as_they_are(settings: Settings) -> None:
    runtime = LocalRuntime(settings)
    session = await runtime.open(SessionSpec("b-etc", "local", "demo"))
    passwd = runtime.root / session.session_id / "etc" / "passwd"
    written = passwd.stat().st_mtime_ns
    os.utime(passwd, ns=(written - 10**9, written - 10**9))  # as if written a second earlier
    await runtime.connect(session.session_id)
    assert passwd.stat().st_mtime_ns == written - 10**9  # not written again
    passwd.write_text("tampered\n")
    await runtime.connect(session.session_id)
    assert passwd.read_text() == PASSWD  # what is wrong is set right
    await runtime.close(session.session_id)
