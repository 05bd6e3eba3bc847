"""The agent loop's coder answering a review: it reads the tests, adds the one the reviewer
asked for, runs them and hands back. A pure function of the request, like every answer."""

from __future__ import annotations

from typing import Any

from cofounder.offline_model import script

TESTS = "tests/test_slugify.py"
PYTEST = "python3 -m pytest -q -p no:cacheprovider"


def coder_turn(turn: int) -> list[tuple[str, dict[str, Any]]]:
    """This turn's tool calls as (name, input); none means the coder is done."""
    steps: list[list[tuple[str, dict[str, Any]]]] = [
        [("read_file", {"path": TESTS})],
        [
            (
                "edit_file",
                {
                    "path": TESTS,
                    "old": script.LAST_TEST_LINE,
                    "new": script.LAST_TEST_LINE + script.DIGITS_TEST,
                },
            )
        ],
        [("run_command", {"command": PYTEST, "timeout_seconds": 120})],
    ]
    return steps[turn] if turn < len(steps) else []
