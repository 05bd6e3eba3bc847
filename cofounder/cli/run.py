"""Commands that run the stack or one of its parts: dev, worker, api, offline model."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Annotated

import typer

from cofounder.cli.builds import report
from cofounder.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, say
from cofounder.follow import ApiError, BuildsApi, follow
from cofounder.settings import Settings

DEMO_GOAL = "A small Python library that turns any title into a URL slug, with pytest tests"


def _offline_banner(settings: Settings) -> None:
    port = settings.offline_model_port
    say("")
    say("  " + "*" * 72)
    say("  * ANTHROPIC_API_KEY is not set: every build is a SCRIPTED DEMO, played by")
    say(f"  * the offline model on 127.0.0.1:{port}. Set ANTHROPIC_API_KEY for real builds.")
    say("  " + "*" * 72)
    say("")


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
    report(settings, final)


def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated queues to serve: workflows, models, sandbox"
            " (default: COFOUNDER_WORKER_QUEUES, or all three)."
        ),
    ] = None,
) -> None:
    """Run a worker for the build's task queues; SIGTERM drains it."""
    from pydantic import ValidationError

    from cofounder.logging import configure_logging
    from worker import main

    configure_logging()
    if queues is not None:
        os.environ["COFOUNDER_WORKER_QUEUES"] = queues  # the option is the variable
    try:
        settings = Settings()
    except ValidationError as err:
        say(f"error: {err.errors()[0]['msg']}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    asyncio.run(main(settings))


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


def offline_model() -> None:
    """Serve the offline model (a scripted co-founder speaking the Messages API)."""
    from cofounder.offline_model.server import serve

    serve("127.0.0.1", Settings().offline_model_port)
