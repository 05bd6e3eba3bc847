"""The `cofounder` command: run the stack or its parts, start and follow builds, replay."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cofounder.follow import (
    ApiError,
    BuildsApi,
    approve_lines,
    follow,
    merge_line,
    plan_lines,
)
from cofounder.payloads import LOCAL_OWNER
from cofounder.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

DEMO_GOAL = "A small Python library that turns any title into a URL slug, with pytest tests"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def say(message: str) -> None:
    print(message, flush=True)


def _offline_banner(settings: Settings) -> None:
    port = settings.offline_model_port
    say("")
    say("  " + "*" * 72)
    say("  * ANTHROPIC_API_KEY is not set: every build is a SCRIPTED DEMO, played by")
    say(f"  * the offline model on 127.0.0.1:{port}. Set ANTHROPIC_API_KEY for real builds.")
    say("  " + "*" * 72)
    say("")


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Submit one demo build and follow it.")] = False,
) -> None:
    """Start Temporal's dev server, the worker and the API (and the offline model without a key)."""
    from cofounder.stack import StackError, start_stack

    settings = Settings()
    if settings.offline:
        _offline_banner(settings)
    # Ctrl-C and SIGTERM both stop every process we started (SIGINT is restored explicitly,
    # since a shell may start us with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack = start_stack(settings, say)  # stops what it started if it fails or is interrupted
    except StackError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        say("\nstopped before the stack was up")
        raise typer.Exit(130) from None
    try:
        if demo:
            try:
                _run_demo(settings)
            except ApiError as err:
                say(f"the demo build could not be followed: {err}; see {stack.logs_dir}")
        say("serving; press Ctrl-C to stop every process")
        while True:
            stack.restart_exited(say)
            time.sleep(1)
    except KeyboardInterrupt:
        say("\nstopping…")
    except StackError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        stack.stop()
        say("stopped")


def _run_demo(settings: Settings) -> None:
    api = BuildsApi(settings.api_url)
    build = api.start("demo", DEMO_GOAL)
    say(f"\ndemo build {build['id']}: {DEMO_GOAL}")
    final = follow(api, build["id"], say)
    _report(settings, final)


def _report(settings: Settings, build: dict[str, Any]) -> None:
    ui_host = settings.temporal_address.rpartition(":")[0] or "127.0.0.1"
    ui = (
        f"http://{ui_host}:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{build['workflow_id']}"
    )
    cost = build.get("cost") or {}
    say(f"\nbuild {build['id']} {build['status']} after {build.get('attempts', 0)} test attempt(s)")
    say(
        f"  cost: ${cost.get('usd', 0):.4f} ({cost.get('input_tokens', 0)} in / "
        f"{cost.get('output_tokens', 0)} out tokens)"
    )
    if build.get("error"):
        say(f"  error: {build['error']}")
    if build.get("pull_request"):
        pr = build["pull_request"]
        say(f"  pull request #{pr['id']}: {pr['title']} ({pr['branch']} → {pr['base']})")
        say(f"  diff:   curl {settings.api_url}/api/builds/{build['id']}/pull-request")
        say(f"  merge:  cofounder merge {build['id']}")
        remote = settings.git_remote(LOCAL_OWNER, build["project"])
        say(f"  branch: git clone --branch {pr['branch']} {remote}")
    say(f"  Temporal UI: {ui}")
    say(f"  CLI: temporal workflow show --workflow-id {build['workflow_id']}")


@app.command()
def build(
    goal: Annotated[str, typer.Argument(help="What to build, in plain words.")],
    project: Annotated[str, typer.Option(help="Project slug.")] = "demo",
    require_approval: Annotated[bool, typer.Option(help="Wait for plan approval.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the build until it ends.")] = False,
) -> None:
    """Start a build through the API. Exit 0 on success, 1 on a failed build, 2 on bad input."""
    settings = Settings()
    api = BuildsApi(settings.api_url)
    try:
        started = api.start(project, goal, require_approval)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code == 422 else EXIT_FAILED) from None
    say(f"build {started['id']} {started['status']} (workflow {started['workflow_id']})")
    if wait:
        _follow_to_the_end(settings, api, started["id"])


@app.command("follow")
def follow_build(build_id: str) -> None:
    """Follow a running build (e.g. one an operator has just reset) until it ends.

    Exit 0 when it succeeded, 1 when it failed or was cancelled, 2 for an unknown build."""
    settings = Settings()
    _follow_to_the_end(settings, BuildsApi(settings.api_url), build_id)


def _follow_to_the_end(settings: Settings, api: BuildsApi, build_id: str) -> NoReturn:
    try:
        final = follow(api, build_id, say)
    except ApiError as err:
        say(f"error while following build {build_id}: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 422) else EXIT_FAILED) from None
    _report(settings, final)
    raise typer.Exit(0 if final["status"] == "succeeded" else EXIT_FAILED)


@app.command()
def plan(build_id: str) -> None:
    """Print a build's plan (and how to decide it, while it awaits approval).

    Exit 2 for an unknown build or one with no plan yet."""
    api = BuildsApi(Settings().api_url)
    try:
        lines = plan_lines(api.plan(build_id))
        awaiting = api.get(build_id)["status"] == "awaiting_approval"
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    for line in lines + (approve_lines(build_id) if awaiting else []):
        say(line)


@app.command()
def approve(
    build_id: str,
    reject: Annotated[bool, typer.Option(help="Reject the plan instead.")] = False,
    comment: str = "",
) -> None:
    """Approve (or reject) a build's plan that is awaiting approval."""
    api = BuildsApi(Settings().api_url)
    try:
        result = api.approve(build_id, approved=not reject, comment=comment)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    say(f"build {result['id']}: plan {'rejected' if reject else 'approved'}")


@app.command()
def merge(build_id: str) -> None:
    """Merge a build's pull request into main, so the project's next build starts from it.

    Exit 2 for an unknown build, one without a pull request, or a conflict with main."""
    api = BuildsApi(Settings().api_url)
    try:
        pr = api.merge(build_id)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    say(merge_line(build_id, pr))


@app.command()
def worker() -> None:
    """Run a worker for the build task queue."""
    from cofounder.logging import configure_logging
    from worker import main

    configure_logging()
    asyncio.run(main())


@app.command("sweep-sandboxes")
def sweep_sandboxes() -> None:
    """Close the sandboxes of builds that no longer run (each worker does it every 10 min)."""
    from activities.sandbox.sweep import sweep_orphans
    from cofounder.temporal import connect
    from worker import sandbox_runtime

    async def sweep() -> list[str]:
        settings = Settings()
        return await sweep_orphans(sandbox_runtime(settings), await connect(settings))

    closed = asyncio.run(sweep())
    say(f"closed {len(closed)} orphaned sandbox(es)" + "".join(f"\n  {c}" for c in closed))


@app.command()
def api() -> None:
    """Serve the HTTP API."""
    import uvicorn

    from api.main import create_app
    from cofounder.logging import configure_logging

    configure_logging()
    settings = Settings()
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )


@app.command("offline-model")
def offline_model() -> None:
    """Serve the offline model (a scripted co-founder speaking the Messages API)."""
    from cofounder.offline_model.server import serve

    serve("127.0.0.1", Settings().offline_model_port)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to DATABASE_URL (SQLite under the data dir by default)."""
    from cofounder.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    say(f"database at revision {revision}")


@app.command()
def replay(
    workflow_id: Annotated[
        str | None, typer.Argument(help="Fetch this workflow's history.")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="Replay a history JSON file instead.")] = None,
) -> None:
    """Replay a build's history against the current code; non-zero on non-determinism."""
    from cofounder.replay import ReplayFailed, replay_file, replay_workflow

    if (workflow_id is None) == (file is None):
        say("error: give a WORKFLOW_ID or --file, not both")
        raise typer.Exit(EXIT_BAD_INPUT)
    runs = 1
    try:
        if file is not None:
            replay_file(file)
        else:
            assert workflow_id is not None
            runs = asyncio.run(replay_workflow(Settings(), workflow_id))
    except ReplayFailed as err:
        say(f"replay failed: {err}")
        raise typer.Exit(EXIT_FAILED) from None
    chain = f" ({runs} runs)" if runs > 1 else ""
    say(f"replayed {workflow_id or file}{chain}: deterministic")


def main() -> None:
    sys.exit(app())
