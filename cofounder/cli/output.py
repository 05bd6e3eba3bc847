"""How the command speaks to people (its one way to print) and its exit codes."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def say(message: str) -> None:
    print(message, flush=True)
