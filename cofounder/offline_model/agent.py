"""The scripted coder of the agent loop: it works through the workspace tools turn by turn.

The plan has two steps. The first step's first pass looks at the workspace, writes the code
and its tests (with the one bug) and hands over. A fix pass (the build went on in the step's
conversation with the debugger's diagnosis) reads the module, edits the one line, runs the tests
and hands over. When the first look finds the project already there (a build of a project whose
earlier build was merged), it adds a feature instead: reads the module, edits slugify, writes the
feature's tests, runs them and hands over. The second step writes the README, or adds the
feature's line to the one there. The pass and its turn are read from the conversation, so every
answer is a pure function of the request, as the rest of the offline model's are.
"""

from __future__ import annotations

import re
from typing import Any

from cofounder.offline_model import feature, script

PYTEST = "python3 -m pytest -q -p no:cacheprovider"
MODULE = "slugkit/__init__.py"
AGENT_TOOL = "run_command"  # only the agent loop's coder is given it


def turn_of(messages: list[dict[str, Any]]) -> int:
    """How many answers the coder has given in this conversation so far."""
    return sum(1 for message in messages if message.get("role") == "assistant")


def current_pass(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages from the one that started the coder's current pass (the step's opening, or
    the news that its tests failed) on: a user message of text alone, no tool results."""
    starts = [i for i, message in enumerate(messages) if _starts_pass(message)]
    return messages[starts[-1] :] if starts else messages


def _starts_pass(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if message.get("role") != "user":
        return False
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(block.get("type") == "text" for block in content)


def step_of(text: str) -> int | None:
    """The plan step the pass's opening asks for; None: the whole plan at once."""
    found = re.search(rf"{re.escape(script.STEP_HEADING)} (\d+) of \d+", text)
    return int(found.group(1)) if found else None


def last_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return []
    return [block for block in content if block.get("type") == "tool_result"]


def coder_turn(
    messages: list[dict[str, Any]],
    goal: str,
    text: str,
    opening: str,
    slow_tests: float | None,
    malformed: bool,
    stuck: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """This turn's tool calls as (name, input); none means the coder is done. `messages` and
    `text` are the current pass's, `opening` the conversation's first message."""
    if stuck:
        return [("list_files", {"path": "."})]
    turn = turn_of(messages)
    failed = any(result.get("is_error") for result in last_results(messages))
    step = step_of(opening)
    if script.DIAGNOSIS_HEADING in text:
        calls = _fix(turn, text)
    elif step == script.DOCS_STEP:
        calls = _docs(turn, goal, messages)
    elif _project_exists(messages):
        calls = _feature(turn, messages)
    else:
        calls = _first_pass(turn, goal, failed, step)
    if malformed and calls:
        calls[0] = (calls[0][0], {"path": 5})  # a wrong type: the tool answers with an error
    if slow_tests:
        calls.append(_write("tests/test_slow.py", script.slow_test(slow_tests)))
    return calls


def _first_pass(
    turn: int, goal: str, failed: bool, step: int | None
) -> list[tuple[str, dict[str, Any]]]:
    if turn == 0:
        return [("list_files", {"path": "."})]
    if turn == 1 or (failed and turn < 4):
        files = script.project_files(goal, fixed=False)
        if step is not None:  # the README is the docs step's
            files.pop(script.README)
        return [_write(path, content) for path, content in files.items()]
    return []


def _docs(turn: int, goal: str, messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Write the README; one already there (a merged build's) gets the feature's line."""
    if turn == 0:
        return [("list_files", {"path": "."})]
    listed = "\n".join(text_of(block) for block in last_results(messages[:3]))
    exists = any(line.startswith(f"{script.README} (") for line in listed.splitlines())
    if turn == 1 and not exists:
        return [_write(script.README, script.project_files(goal, fixed=True)[script.README])]
    if turn == 1:
        return [("edit_file", {"path": script.README, **feature.README_EDIT})]
    return []


def _fix(turn: int, text: str) -> list[tuple[str, dict[str, Any]]]:
    steps: list[list[tuple[str, dict[str, Any]]]] = [
        [("read_file", {"path": MODULE})],
        [("edit_file", {"path": MODULE, "old": script.BUGGY, "new": script.FIXED})],
        [("run_command", {"command": PYTEST, "timeout_seconds": 120})],
    ]
    return steps[turn] if turn < len(steps) else []


def _project_exists(messages: list[dict[str, Any]]) -> bool:
    """Whether the first look at the workspace (the answer to turn 0's list_files) lists the
    module: lines of that answer read `path (size bytes)`."""
    first = next((m for m in messages[1:] if m.get("role") == "user"), None)
    if first is None:
        return False
    listed = "\n".join(text_of(block) for block in last_results([first]))
    return any(line.startswith(f"{MODULE} (") for line in listed.splitlines())


def _feature(turn: int, messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    if turn == 1:
        return [("read_file", {"path": MODULE})]
    if turn == 2:
        read = "\n".join(text_of(block) for block in last_results(messages))
        return [("edit_file", {"path": MODULE, "old": _function(read), "new": feature.FUNCTION})]
    if turn == 3:
        return [_write(feature.TESTS_PATH, feature.TESTS)]
    if turn == 4:
        return [("run_command", {"command": PYTEST, "timeout_seconds": 120})]
    return []


def _function(module: str) -> str:
    """slugify as the module read has it: from its `def` to the next top-level statement (a line
    starting with neither a space nor the `)` closing a long signature), or the end."""
    found = re.search(r"^def slugify\(.*?(?=^[^\s)]|\Z)", module, re.DOTALL | re.MULTILINE)
    if found is None:
        return "def slugify("  # not there: the edit is refused, and says so
    return found.group(0).rstrip("\n") + "\n"


def text_of(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _write(path: str, content: str) -> tuple[str, dict[str, Any]]:
    return ("write_file", {"path": path, "content": content})


def summary(turn: int) -> str:
    """What the coder says on a turn (with its tool calls, or alone when it is done)."""
    return "Done: the project is written; over to the tests." if turn else "Looking around."
