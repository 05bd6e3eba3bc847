"""Commands about project memory: what a project remembers, forgetting one memory, and the
demo of a second build recalling the first's decision."""

from __future__ import annotations

from typing import Annotated

import typer

from cofounder.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, say
from cofounder.follow import ApiError, BuildsApi
from cofounder.memory_demo import DemoFailed, run_memory_demo
from cofounder.settings import Settings


def memories(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    search: Annotated[str, typer.Option(help="Only those most relevant to these words.")] = "",
) -> None:
    """List what a project remembers (newest first), or search it."""
    api = BuildsApi(Settings().api_url)
    try:
        found = api.memories(project, search)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 422) else EXIT_FAILED) from None
    if not found:
        say(f"project {project} remembers nothing" + (f" about '{search}'" if search else ""))
    for memory in found:
        say(f"{memory['id']}  {memory['kind']:10} {memory['source']}")
        say(f"    {memory['text']}")


def forget(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    memory_id: Annotated[str, typer.Argument(help="The memory's id (`cofounder memories`).")],
) -> None:
    """Remove one memory for good: no later build recalls it."""
    api = BuildsApi(Settings().api_url)
    try:
        api.forget(project, memory_id)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 422) else EXIT_FAILED) from None
    say(f"forgot {memory_id}")


def memory_demo() -> None:
    """Two builds of a new project on the running stack: the second's plan cites a decision
    the first recorded. Exit 0 when it does, 1 otherwise."""
    api = BuildsApi(Settings().api_url, timeout=60)
    try:
        run_memory_demo(api, say)
    except (ApiError, DemoFailed) as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_FAILED) from None
    say("\nthe second build recalled the first's decision")
