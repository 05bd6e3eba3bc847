"""`cofounder deployment`: roll a worker version out (or back), and list the live ones."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cofounder.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, say
from cofounder.settings import Settings

app = typer.Typer(help="Worker versions (COFOUNDER_DEPLOYMENT_NAME).", no_args_is_help=True)


def _deployment(settings: Settings) -> str:
    if settings.deployment_name is None:
        say("error: COFOUNDER_DEPLOYMENT_NAME is not set: these workers are not versioned")
        raise typer.Exit(EXIT_BAD_INPUT)
    return settings.deployment_name


@app.command("set-current")
def set_current(
    build_id: Annotated[str, typer.Argument(help="The worker version new builds start on.")],
) -> None:
    """Start new builds on BUILD_ID's workers (a rollout, or a rollback to a version still
    running); each running build stays on the version it started on."""
    from cofounder.deployment import DeploymentError
    from cofounder.deployment import set_current as set_version
    from cofounder.temporal import connect

    settings = Settings()
    deployment = _deployment(settings)

    async def run() -> None:
        await set_version(await connect(settings), deployment, build_id)

    try:
        asyncio.run(run())
    except DeploymentError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_FAILED) from None
    say(f"{deployment}: new builds start on {build_id}")


@app.command("live")
def live() -> None:
    """Print the build ids whose workers must keep running (current, ramping, draining), one
    a line: a deploy keeps these and may stop the others."""
    from cofounder.deployment import live as live_versions
    from cofounder.temporal import connect

    settings = Settings()
    deployment = _deployment(settings)

    async def run() -> list[str]:
        return await live_versions(await connect(settings), deployment)

    for build_id in asyncio.run(run()):
        typer.echo(build_id)


@app.command("show")
def show() -> None:
    """Every version of the deployment with its status."""
    from cofounder.deployment import versions
    from cofounder.temporal import connect

    settings = Settings()
    deployment = _deployment(settings)

    async def run() -> dict[str, str]:
        return await versions(await connect(settings), deployment)

    for build_id, status in asyncio.run(run()).items():
        typer.echo(f"{build_id}\t{status}")
