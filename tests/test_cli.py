"""The `cofounder` command as a user runs it: through the real API, with real exit codes."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from api.main import create_app
from cofounder.cli import app
from cofounder.settings import Settings
from tests.conftest import ServerThread, free_port
from worker import running_worker

runner = CliRunner()


@pytest.fixture
def api_url(env: WorkflowEnvironment, settings: Settings, sessions) -> Iterator[str]:
    with ServerThread(create_app(settings, client=env.client)) as server:
        yield server.url


def cli_env(settings: Settings, api_url: str) -> dict[str, str]:
    return {
        "COFOUNDER_API_URL": api_url,
        "COFOUNDER_DATA_DIR": str(settings.data_dir),
        "COFOUNDER_TASK_QUEUE": settings.task_queue,
    }


async def test_build_wait_follows_every_phase_and_exits_0(
    env: WorkflowEnvironment, settings: Settings, api_url: str
) -> None:
    environ = cli_env(settings, api_url)
    async with running_worker(env.client, settings), httpx.AsyncClient(base_url=api_url) as http:
        result = await asyncio.to_thread(
            runner.invoke,
            app,
            ["build", "a slugify library", "--project", "cli-demo", "--wait"],
            env=environ,
        )
        build_id = result.output.split("(workflow build-", 1)[1].split(")", 1)[0]
        # Feedback from the CLI is one iteration on the pull request; the merge ends the session.
        ask = ["feedback", build_id, "Say which Python it needs", "--wait"]
        said = await asyncio.to_thread(runner.invoke, app, ask, env=environ)
        assert said.exit_code == 0, said.output
        assert "feedback queued" in said.output
        assert re.search(
            r"^iteration 1 pushed → [0-9a-f]{12} \$0\.\d{4}: @local: Say which Python it needs$",
            said.output,
            re.MULTILINE,
        ), said.output
        build = (await http.get(f"/api/builds/{build_id}")).json()
        assert [it["status"] for it in build["iterations"]] == ["pushed"]
        merged = await asyncio.to_thread(runner.invoke, app, ["merge", build_id], env=environ)
        assert merged.exit_code == 0, merged.output
        handle = env.client.get_workflow_handle(f"build-{build_id}")
        assert (await handle.result())["status"] == "merged"
        # Ended, the build still shows its iterations, as their rows recorded them.
        ended = (await http.get(f"/api/builds/{build_id}")).json()
        assert [(it["number"], it["status"]) for it in ended["iterations"]] == [(1, "pushed")]
        assert ended["iterations"][0]["cost"]["usd"] == build["iterations"][0]["cost"]["usd"]
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    phases = [
        re.sub(r" \(attempt \d+\)", "", line.split("]", 1)[1].split(maxsplit=1)[1])
        for line in lines
        if line.startswith("  [")
    ]
    # The first pass ends with its pull request in review: that is a success.
    assert phases == [
        "planning", "coding", "testing", "debugging", "coding", "testing", "coding", "testing",
        "reviewing", "publishing", "in review",
    ]  # fmt: skip
    assert "pull request #" in result.output and "cofounder/" in result.output
    assert "cofounder feedback " in result.output
    # What each step of the plan cost (the build is live: with its title).
    assert re.search(r"^  step 1: Create the slugkit .*\$0\.\d{4}$", result.output, re.MULTILINE)
    assert re.search(r"^  step 2: Document .*\$0\.\d{4}$", result.output, re.MULTILINE)

    # The finished build's history (its review session too), fetched from the server, replays
    # against this code.
    workflow_id = result.output.split("(workflow ", 1)[1].split(")", 1)[0]
    replay_env = {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host}
    replayed = await asyncio.to_thread(runner.invoke, app, ["replay", workflow_id], env=replay_env)
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {workflow_id}: deterministic" in replayed.output


async def test_build_with_bad_input_exits_2(settings: Settings, api_url: str) -> None:
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        ["build", "   ", "--project", "Bad Slug"],
        env=cli_env(settings, api_url),
    )
    assert result.exit_code == 2
    assert "goal" in result.output and "project" in result.output


def test_build_without_api_says_how_to_start_it(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["build", "anything"], env=cli_env(settings, url))
    assert result.exit_code == 1
    assert "cannot reach the API" in result.output and "cofounder dev" in result.output


def test_dev_refuses_a_busy_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "COFOUNDER_DATA_DIR": str(tmp_path / "data"),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "COFOUNDER_TEMPORAL_UI_PORT": str(free_port()),
            "COFOUNDER_OFFLINE_MODEL_PORT": str(free_port()),
            "COFOUNDER_API_PORT": str(port),
        }
        result = runner.invoke(app, ["dev"], env=env)
    assert result.exit_code == 1
    assert f"port {port}" in result.output and "COFOUNDER_API_PORT" in result.output
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started


def test_db_upgrade_applies_the_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    result = runner.invoke(app, ["db", "upgrade"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    tables = sqlite3.connect(tmp_path / "fresh.db").execute(
        "select name from sqlite_master where type = 'table'"
    )
    assert {"projects", "builds", "pull_requests", "usage_ledger"} <= {row[0] for row in tables}
