"""The agent loop coder's turns for the Node.js project: write it, then fix the one bug."""

from __future__ import annotations

from typing import Any

from cofounder.offline_model import agent, script
from cofounder.offline_model.faults import Fault
from cofounder.offline_model.node import BUGGY, FIXED, MODULE, NPM_TEST, project_files

_SLOW_TEST = """'use strict';

const test = require('node:test');

test('slow', () => new Promise((resolve) => setTimeout(resolve, {ms})));
"""


def coder_turn(
    messages: list[dict[str, Any]], goal: str, text: str, opening: str, fault: Fault
) -> list[tuple[str, dict[str, Any]]]:
    """The agent loop coder's tool calls this turn as (name, input); none means it is done.
    `messages` and `text` are the current pass's, `opening` the conversation's first message."""
    if fault.stuck:
        return [("list_files", {"path": "."})]
    step = agent.step_of(opening)
    if script.DIAGNOSIS_HEADING in text or script.REVIEW_HEADING in text:
        calls = _fix(messages)
    else:
        calls = _first_pass(messages, goal, step)
    if fault.malformed and calls:
        calls[0] = (calls[0][0], {"path": 5})  # a wrong type: the tool answers with an error
    if fault.slow_tests:
        slow = _SLOW_TEST.replace("{ms}", str(round(fault.slow_tests * 1000)))
        calls.append(("write_file", {"path": "test/slow.test.js", "content": slow}))
    return calls


def _first_pass(
    messages: list[dict[str, Any]], goal: str, step: int | None
) -> list[tuple[str, dict[str, Any]]]:
    """Look, write the step's files (again while writes fail, up to turn 3), hand over: the
    code and tests in the first step, the README in the docs step, all at once without steps."""
    turn = agent.turn_of(messages)
    failed = any(result.get("is_error") for result in agent.last_results(messages))
    if turn == 0:
        return [("list_files", {"path": "."})]
    if turn == 1 or (failed and turn < 4):
        files = project_files(goal, fixed=False)
        if step is not None:
            docs = step == script.DOCS_STEP
            files = {p: c for p, c in files.items() if (p == script.README) == docs}
        return [("write_file", {"path": p, "content": c}) for p, c in files.items()]
    return []


def _fix(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Read the module, edit the bug out if the read shows it, run the tests, hand over."""
    called = _called(messages)
    results = agent.last_results(messages)
    run = ("run_command", {"command": NPM_TEST, "timeout_seconds": 120})
    if not called or (called[-1] == "read_file" and any(r.get("is_error") for r in results)):
        return [("read_file", {"path": MODULE})]
    if called[-1] == "read_file":
        read = "\n".join(_result_text(result) for result in results)
        edit = {"path": MODULE, "old": BUGGY, "new": FIXED}
        return [("edit_file", edit)] if BUGGY in read else [run]
    return [run] if called[-1] == "edit_file" else []


def _called(messages: list[dict[str, Any]]) -> list[str]:
    """The names of the tools the coder called so far, in order."""
    return [
        block["name"]
        for message in messages
        if message.get("role") == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")
