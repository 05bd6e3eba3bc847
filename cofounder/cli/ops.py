"""Operators' commands: sweep orphaned sandboxes, migrate the database, replay a history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cofounder.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, say
from cofounder.settings import Settings


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


def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to DATABASE_URL (SQLite under the data dir by default)."""
    from cofounder.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    say(f"database at revision {revision}")


def replay(
    workflow_id: Annotated[
        str | None, typer.Argument(help="Fetch this workflow's history.")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="Replay a history JSON file instead.")] = None,
    recent: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Replay the N most recently started builds (every run of each) instead.",
        ),
    ] = None,
) -> None:
    """Replay a build's history against the current code; non-zero on non-determinism."""
    from cofounder.replay import ReplayFailed, replay_file, replay_recent, replay_workflow

    if [workflow_id, file, recent].count(None) != 2:
        say("error: give one of WORKFLOW_ID, --file or --recent N")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        if file is not None:
            replay_file(file)
            say(f"replayed {file}: deterministic")
        elif recent is not None:
            builds = asyncio.run(replay_recent(Settings(), recent))
            for replayed, runs in builds.items():
                say(f"  {replayed} ({runs} run{'s' if runs > 1 else ''})")
            say(f"replayed {len(builds)} builds ({sum(builds.values())} runs): deterministic")
        else:
            assert workflow_id is not None
            runs = asyncio.run(replay_workflow(Settings(), workflow_id))
            chain = f" ({runs} runs)" if runs > 1 else ""
            say(f"replayed {workflow_id}{chain}: deterministic")
    except ReplayFailed as err:
        say(f"replay failed: {err}")
        raise typer.Exit(EXIT_FAILED) from None
