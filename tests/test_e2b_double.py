"""The E2B double, driven through the real `e2b` SDK's async API.

These pin the double to what the SDK sends and parses, so the sandbox tests that stand on it
exercise the same code paths as against E2B.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    SandboxState,
)

from tests.doubles.e2b import E2BDouble

ALL_BYTES = bytes(range(256)) + b"\r\n--boundary\r\n\r\n"


@pytest.fixture
def double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[E2BDouble]:
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    with E2BDouble(tmp_path / "e2b") as double:
        for name, value in double.env().items():
            monkeypatch.setenv(name, value)
        yield double


def _alive(pid: int) -> bool:
    """Whether a process runs; a zombie (nobody reaped it yet) does not count."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def test_create_with_the_same_idempotency_key_makes_one_sandbox(double: E2BDouble) -> None:
    first = await AsyncSandbox.create(metadata={"owner": "o1"}, idempotency_key="build-1-create")
    again = await AsyncSandbox.create(metadata={"owner": "o1"}, idempotency_key="build-1-create")

    assert again.sandbox_id == first.sandbox_id
    assert (double.counts.creates, double.counts.idempotent_replays) == (1, 1)
    assert list(double.sandboxes) == [first.sandbox_id]
    info = await first.get_info()
    assert info.metadata == {"owner": "o1"}
    assert info.state == SandboxState.RUNNING
    assert str(info.envd_version) == "0.6.4"
    assert (double.sandboxes[first.sandbox_id].root / "home/user").is_dir()


async def test_an_idempotency_key_reused_with_another_body_is_refused(double: E2BDouble) -> None:
    await AsyncSandbox.create(metadata={"owner": "o1"}, idempotency_key="key-1")

    with pytest.raises(SandboxException, match="422"):
        await AsyncSandbox.create(metadata={"owner": "o2"}, idempotency_key="key-1")
    assert double.counts.creates == 1


async def test_a_wrong_api_key_is_refused(double: E2BDouble) -> None:
    with pytest.raises(AuthenticationException):
        await AsyncSandbox.create(api_key="e2b_not_the_key")
    with pytest.raises(AuthenticationException):
        await AsyncSandbox.list(api_key="e2b_not_the_key").next_items()
    assert double.counts.creates == 0


async def test_envd_refuses_a_missing_or_wrong_access_token(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    await sandbox.files.write("/home/user/a.txt", "secret")
    sandbox_headers = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": "49983"}
    token = double.sandboxes[sandbox.sandbox_id].access_token

    async with httpx.AsyncClient(base_url=double.url, headers=sandbox_headers) as client:
        params = {"path": "/home/user/a.txt"}
        missing = await client.get("/files", params=params)
        wrong = await client.get("/files", params=params, headers={"X-Access-Token": "nope"})
        right = await client.get("/files", params=params, headers={"X-Access-Token": token})

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert right.content == b"secret"


async def test_files_round_trip(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    files = sandbox.files

    await files.write("/home/user/workspace/notes.txt", "héllo\n")
    await files.write("/home/user/workspace/data.bin", ALL_BYTES)
    await files.write("relative.txt", "in the home dir")

    assert await files.read("/home/user/workspace/notes.txt") == "héllo\n"
    assert bytes(await files.read("/home/user/workspace/data.bin", format="bytes")) == ALL_BYTES
    root = double.sandboxes[sandbox.sandbox_id].root
    assert (root / "home/user/workspace/data.bin").read_bytes() == ALL_BYTES
    assert (root / "home/user/relative.txt").read_text() == "in the home dir"
    entries = {e.name: e for e in await files.list("/home/user/workspace")}
    assert sorted(entries) == ["data.bin", "notes.txt"]
    assert entries["data.bin"].size == len(ALL_BYTES)
    assert entries["data.bin"].path == "/home/user/workspace/data.bin"

    assert await files.make_dir("/home/user/workspace/pkg") is True
    assert await files.make_dir("/home/user/workspace/pkg") is False
    moved = await files.rename("/home/user/workspace/notes.txt", "/home/user/workspace/pkg/n.txt")
    assert moved.path == "/home/user/workspace/pkg/n.txt"
    await files.remove("/home/user/workspace/data.bin")
    assert not await files.exists("/home/user/workspace/data.bin")
    with pytest.raises(FileNotFoundException):
        await files.read("/home/user/workspace/data.bin")
    depth_two = {e.path for e in await files.list("/home/user/workspace", depth=2)}
    assert depth_two == {"/home/user/workspace/pkg", "/home/user/workspace/pkg/n.txt"}


async def test_several_files_and_gzip_uploads_are_written(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()

    written = await sandbox.files.write_files(
        [{"path": "/home/user/a.py", "data": "a = 1\n"}, {"path": "b/b.py", "data": b"b = 2\n"}]
    )
    await sandbox.files.write("/home/user/c.bin", ALL_BYTES, gzip=True)

    assert [w.path for w in written] == ["/home/user/a.py", "/home/user/b/b.py"]
    assert await sandbox.files.read("/home/user/b/b.py") == "b = 2\n"
    assert bytes(await sandbox.files.read("/home/user/c.bin", format="bytes")) == ALL_BYTES


async def test_a_failing_command_surfaces_its_exit_code_and_output(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()

    with pytest.raises(CommandExitException) as failed:
        await sandbox.commands.run("echo hi; echo err >&2; exit 3")

    assert failed.value.exit_code == 3
    assert (failed.value.stdout, failed.value.stderr) == ("hi\n", "err\n")


async def test_commands_run_in_the_sandbox_root_with_its_envs(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create(envs={"FROM_SANDBOX": "s"})
    await sandbox.files.make_dir("/home/user/work")

    result = await sandbox.commands.run(
        'echo "$FROM_SANDBOX $FROM_COMMAND" > out.txt; cat out.txt',
        cwd="/home/user/work",
        envs={"FROM_COMMAND": "c"},
    )

    assert (result.exit_code, result.stdout) == (0, "s c\n")
    assert await sandbox.files.read("/home/user/work/out.txt") == "s c\n"


async def test_stdout_streams_while_the_command_runs(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    seen: list[tuple[float, str]] = []

    result = await sandbox.commands.run(
        "echo first; sleep 1; echo second",
        on_stdout=lambda chunk: seen.append((time.monotonic(), chunk)),
    )
    finished = time.monotonic()

    assert result.stdout == "first\nsecond\n"
    assert seen[0][1] == "first\n"
    assert finished - seen[0][0] > 0.8


async def test_a_background_command_is_killed_with_its_children(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    handle = await sandbox.commands.run("sleep 300 & echo $! > child.pid; wait", background=True)
    # The file exists a moment before the shell's echo has written to it.
    while not await sandbox.files.exists("child.pid") or not await sandbox.files.read("child.pid"):
        await asyncio.sleep(0.05)
    child = int(await sandbox.files.read("child.pid"))
    assert handle.pid in [p.pid for p in await sandbox.commands.list()]

    started = time.monotonic()
    assert await sandbox.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as killed:
        await asyncio.wait_for(handle.wait(), 2)

    assert time.monotonic() - started < 2
    assert killed.value.exit_code == -1
    assert not _alive(handle.pid) and not _alive(child)
    assert await sandbox.commands.kill(handle.pid) is False


async def test_connect_reattaches_to_a_running_command(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    handle = await sandbox.commands.run("sleep 0.5; echo late", background=True)
    await handle.disconnect()

    again = await sandbox.commands.connect(handle.pid)
    result = await again.wait()

    assert (result.exit_code, result.stdout) == (0, "late\n")


async def test_pause_then_connect_resumes(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    await sandbox.files.write("/home/user/kept.txt", "kept")
    running = await sandbox.commands.run("sleep 300", background=True)

    assert await sandbox.pause() is True
    with pytest.raises(CommandExitException):
        await asyncio.wait_for(running.wait(), 2)
    assert await sandbox.pause() is False
    assert double.sandboxes[sandbox.sandbox_id].state == "paused"
    assert await sandbox.is_running() is False
    with pytest.raises(SandboxNotRunningException):
        await sandbox.files.read("/home/user/kept.txt")

    resumed = await AsyncSandbox.connect(sandbox.sandbox_id)

    assert await resumed.files.read("/home/user/kept.txt") == "kept"
    assert (await resumed.commands.run("echo back")).stdout == "back\n"
    assert (double.counts.pauses, double.counts.resumes, double.counts.connects) == (1, 1, 1)


async def test_list_filters_by_metadata_and_state(double: E2BDouble) -> None:
    mine = [await AsyncSandbox.create(metadata={"owner": "a", "n": str(i)}) for i in range(2)]
    await AsyncSandbox.create(metadata={"owner": "b"})
    await mine[1].pause()

    found = await AsyncSandbox.list(query=SandboxQuery(metadata={"owner": "a"})).next_items()
    paused = await AsyncSandbox.list(
        query=SandboxQuery(metadata={"owner": "a"}, state=[SandboxState.PAUSED])
    ).next_items()

    assert {s.sandbox_id for s in found} == {s.sandbox_id for s in mine}
    assert [s.sandbox_id for s in paused] == [mine[1].sandbox_id]


async def test_a_killed_sandbox_is_gone(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    root = double.sandboxes[sandbox.sandbox_id].root

    assert await sandbox.kill() is True

    assert double.counts.kills == 1
    assert not root.exists()
    assert await sandbox.kill() is False
    with pytest.raises(SandboxNotFoundException):
        await sandbox.get_info()
    with pytest.raises(SandboxNotRunningException):
        await sandbox.commands.run("echo hi")
    with pytest.raises(SandboxNotRunningException):
        await sandbox.files.read("/home/user/anything")


async def test_a_destroyed_sandbox_cannot_be_connected(double: E2BDouble) -> None:
    sandbox = await AsyncSandbox.create()
    handle = await sandbox.commands.run("sleep 300", background=True)

    double.destroy(sandbox.sandbox_id)

    with pytest.raises(SandboxNotFoundException):
        await AsyncSandbox.connect(sandbox.sandbox_id)
    with pytest.raises(CommandExitException):
        await asyncio.wait_for(handle.wait(), 2)
    assert (double.counts.destroys, double.counts.kills) == (1, 0)
    assert double.sandboxes[sandbox.sandbox_id].state == "killed"


async def test_sandboxes_past_their_timeout_are_killed_or_paused(double: E2BDouble) -> None:
    killed = await AsyncSandbox.create(timeout=60)
    paused = await AsyncSandbox.create(timeout=60, lifecycle={"on_timeout": "pause"})
    kept = await AsyncSandbox.create(timeout=60)
    await kept.set_timeout(600)

    double.skip(120)

    states = {s.sandbox_id: s.state for s in await AsyncSandbox.list().next_items()}
    assert states == {paused.sandbox_id: SandboxState.PAUSED, kept.sandbox_id: SandboxState.RUNNING}
    assert double.counts.expirations == 2
    with pytest.raises(SandboxNotFoundException):
        await killed.get_info()
    info = await kept.get_info()
    assert 600 <= (info.end_at - info.started_at).total_seconds() < 610
