"""The process supervisor behind `cofounder dev`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from cofounder.payloads import OWNER
from cofounder.settings import Settings
from cofounder.stack import MAX_RESTARTS, Stack, StackError, temporal_command
from cofounder.temporal import connect, ensure_search_attributes
from tests.processes import Processes


def test_a_dead_child_is_restarted_until_it_keeps_dying(tmp_path: Path) -> None:
    stack = Stack(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    said: list[str] = []
    first = stack.start("flaky", ["sh", "-c", "exit 3"])
    first.wait()
    stack.restart_exited(said.append)
    assert said == ["flaky exited with code 3; restarting it"]
    assert stack.processes[0][1] is not first  # a new process under the same name
    with pytest.raises(StackError, match="flaky keeps exiting"):
        for _ in range(MAX_RESTARTS + 1):
            stack.processes[0][1].wait()
            stack.restart_exited(said.append)
    stack.stop()


def test_stop_ends_every_child(tmp_path: Path) -> None:
    stack = Stack(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    sleepers = [stack.start(f"sleeper{n}", ["sleep", "60"]) for n in range(2)]
    stack.stop()
    assert [p.returncode for p in sleepers] == [-15, -15]  # ended by SIGTERM
    assert (tmp_path / "logs" / "sleeper0.log").exists()


def test_temporal_keeps_history_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, temporal_address="127.0.0.1:7999", _env_file=None)  # type: ignore[call-arg]
    command = temporal_command(settings)
    assert command[1:3] == ["server", "start-dev"]
    assert command[command.index("--db-filename") + 1] == str(tmp_path / "temporal.db")
    assert command[command.index("--port") + 1] == "7999"
    assert "BuildStatus=Keyword" in command and "Project=Keyword" in command


def test_only_the_worker_sees_the_model_key(tmp_path: Path) -> None:
    stack = Stack(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    stack.env = {"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "sk-test-secret"}
    for name in ("worker", "api", "temporal"):
        stack.start(name, ["sh", "-c", 'echo "key=${ANTHROPIC_API_KEY:-none}"']).wait()
    logs = {
        name: (tmp_path / "logs" / f"{name}.log").read_text()
        for name in ("worker", "api", "temporal")
    }
    assert logs == {"worker": "key=sk-test-secret\n", "api": "key=none\n", "temporal": "key=none\n"}
    stack.stop()


async def test_a_data_dir_from_before_a_search_attribute_gets_it_registered(
    crash_settings: Settings, processes: Processes
) -> None:
    # The dev server as an older version started it: its database knows two attributes only.
    command = temporal_command(crash_settings)
    owner = command.index("Owner=Keyword")
    processes.temporal(command[: owner - 1] + command[owner + 1 :])
    client = await connect(crash_settings)
    namespace = crash_settings.temporal_namespace

    assert await ensure_search_attributes(client, namespace) == ["Owner"]
    assert await ensure_search_attributes(client, namespace) == []  # once is enough
    handle = await client.start_workflow(
        "NoWorkerNeeded",
        id="owner-attribute",
        task_queue="nobody",
        search_attributes=TypedSearchAttributes([SearchAttributePair(OWNER, "user_a")]),
    )
    await handle.terminate()


async def test_connect_waits_for_a_frontend_that_is_still_starting(
    crash_settings: Settings, processes: Processes
) -> None:
    # Asked before the server exists: refused, then "not healthy yet", then a client.
    connecting = asyncio.create_task(connect(crash_settings))
    await asyncio.sleep(0.5)
    assert not connecting.done()
    processes.spawn("temporal", temporal_command(crash_settings))
    client = await asyncio.wait_for(connecting, 30)
    assert (await client.workflow_service.get_system_info(GetSystemInfoRequest())).server_version


async def test_connect_gives_up_after_its_patience(crash_settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await connect(crash_settings, patience=0.5)
