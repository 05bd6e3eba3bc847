"""The `cofounder` command: run the stack or its parts, start and follow builds, replay."""

from __future__ import annotations

import sys

import typer

from cofounder.cli import builds, deployment, memory, ops, run

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(deployment.app, name="deployment")

# Registered here, in the order `cofounder --help` lists them.
app.command()(run.dev)
app.command()(builds.build)
app.command("follow")(builds.follow_build)
app.command()(builds.plan)
app.command()(builds.approve)
app.command()(builds.feedback)
app.command()(builds.merge)
app.command()(builds.close)
app.command()(memory.memories)
app.command()(memory.forget)
app.command("memory-demo")(memory.memory_demo)
app.command()(run.worker)
app.command("sweep-sandboxes")(ops.sweep_sandboxes)
app.command()(run.api)
app.command("offline-model")(run.offline_model)
db_app.command("upgrade")(ops.db_upgrade)
app.command()(ops.replay)


def main() -> None:
    sys.exit(app())
