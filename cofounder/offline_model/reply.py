"""The scripted co-founder's reply to one Messages API request: the role's answer, with usage."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from cofounder.offline_model import agent, cache, feedback, node, node_coder, reviewed, script
from cofounder.offline_model.faults import Fault, ServerState

MALFORMED_INPUT: dict[str, dict[str, Any]] = {
    "architect": {"title": 42, "steps": "not a list"},
    "debugger": {"summary": None},
    "reviewer": {"approved": "maybe", "summary": 3},
}


class MessagesRequest(BaseModel):
    """The fields of a Messages API request the scripted co-founder reads; others are accepted."""

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: dict[str, Any] | None = None


def respond(
    body: MessagesRequest, role: str, state: ServerState, fault: Fault | None = None
) -> dict[str, Any]:
    """The full Messages API response for one request, as changed by `fault` if any."""
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    content = _content(body, role, digest, fault or Fault())
    tool_use = any(block["type"] == "tool_use" for block in content)
    return {
        "id": f"msg_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.model,
        "content": content,
        "stop_reason": "tool_use" if tool_use else "end_turn",
        "stop_sequence": None,
        "usage": _usage(body, content, state),
    }


def _content(body: MessagesRequest, role: str, digest: str, fault: Fault) -> list[dict[str, Any]]:
    text = _request_text(body)
    goal = _goal(body)
    if role == "coder":
        return _coder(body, goal, text, digest, fault)
    answers = _answers(goal, text, fault)
    if role not in answers:
        return [{"type": "text", "text": "I am the offline co-founder; give me a tool to use."}]
    tool, answer = answers[role]
    tool_input = MALFORMED_INPUT[role] if fault.malformed else answer()
    return [_tool_use(digest, 0, tool, tool_input)]


def _answers(goal: str, text: str, fault: Fault) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Each forced role's tool and answer; a Node.js goal gets the Node.js project's."""
    if node.wanted(goal):
        return {
            "architect": ("submit_plan", lambda: node.plan(goal)),
            "debugger": ("submit_diagnosis", lambda: node.diagnosis(text)),
            "reviewer": ("submit_review", lambda: node.review(text)),
        }
    return {
        "architect": ("submit_plan", lambda: script.plan(goal, text)),
        "debugger": ("submit_diagnosis", lambda: script.diagnosis(text)),
        "reviewer": ("submit_review", lambda: script.review(text, fault.picky)),
    }


def _coder(
    body: MessagesRequest, goal: str, text: str, digest: str, fault: Fault
) -> list[dict[str, Any]]:
    """First turn: write every file. After tool results: done, or rewrite if any write failed."""
    if any(tool.get("name") == agent.AGENT_TOOL for tool in body.tools):
        return _agent_coder(body, goal, text, digest, fault)
    last = body.messages[-1].get("content")
    results = [b for b in last if b.get("type") == "tool_result"] if isinstance(last, list) else []
    if results and not any(r.get("is_error") for r in results):
        return [{"type": "text", "text": "done"}]
    files = script.project_files(goal, fixed=script.DIAGNOSIS_HEADING in text)
    if fault.slow_tests:
        files["tests/test_slow.py"] = script.slow_test(fault.slow_tests)
    blocks = [
        _tool_use(digest, i, "write_file", {"path": path, "content": content})
        for i, (path, content) in enumerate(files.items())
    ]
    if fault.malformed:
        blocks[0]["input"] = {"path": "../" + blocks[0]["input"]["path"]}
    return [{"type": "text", "text": f"Writing {len(files)} files."}, *blocks]


def _agent_coder(
    body: MessagesRequest, goal: str, text: str, digest: str, fault: Fault
) -> list[dict[str, Any]]:
    """The agent loop's coder: one turn of tool calls, or a closing summary."""
    if fault.endless:
        turn = agent.turn_of(body.messages)
        command = {"command": f"echo 'still going: turn {turn}'", "timeout_seconds": 10}
        return [
            {"type": "text", "text": "One more thing."},
            _tool_use(digest, 0, "run_command", command),
        ]
    messages = agent.current_pass(body.messages)
    text = "\n".join(_blocks_text(m.get("content")) for m in messages if m.get("role") == "user")
    opening = _blocks_text(body.messages[0].get("content"))
    if script.FEEDBACK_HEADING in opening and script.DIAGNOSIS_HEADING not in text:
        calls = _answer_feedback(messages, goal, opening)
    elif node.wanted(goal):
        calls = node_coder.coder_turn(messages, goal, text, opening, fault)
    elif script.REVIEW_HEADING in text:
        calls = reviewed.coder_turn(agent.turn_of(messages))
    else:
        calls = agent.coder_turn(
            messages, goal, text, opening, fault.slow_tests, bool(fault.malformed), fault.stuck
        )
    words = {"type": "text", "text": agent.summary(agent.turn_of(messages))}
    return [words, *(_tool_use(digest, i, name, args) for i, (name, args) in enumerate(calls))]


def _answer_feedback(
    messages: list[dict[str, Any]], goal: str, opening: str
) -> list[tuple[str, dict[str, Any]]]:
    results = [b for b in agent.last_results(messages) if not b.get("is_error")]
    read = "\n".join(agent.text_of(block) for block in results)
    tests = "npm test" if node.wanted(goal) else agent.PYTEST
    return feedback.answer(agent.turn_of(messages), opening, read, tests)


def _tool_use(digest: str, index: int, name: str, tool_input: Any) -> dict[str, Any]:
    tool_id = hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()[:24]
    return {"type": "tool_use", "id": f"toolu_{tool_id}", "name": name, "input": tool_input}


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict):
            inner = block.get("text", block.get("content", ""))
            parts.append(inner if isinstance(inner, str) else _blocks_text(inner))
    return "\n".join(parts)


def _request_text(body: MessagesRequest) -> str:
    """Everything the user said, as plain text."""
    user = [m.get("content") for m in body.messages if m.get("role") == "user"]
    return "\n".join(_blocks_text(content) for content in user)


def _goal(body: MessagesRequest) -> str:
    first = _blocks_text(body.messages[0].get("content"))
    found = re.search(r"^Goal:\s*(.+)$", first, re.MULTILINE)
    return found.group(1).strip() if found else first.strip().split("\n", 1)[0]


def _tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, math.ceil(len(text) / 4))


def _usage(
    body: MessagesRequest, content: list[dict[str, Any]], state: ServerState
) -> dict[str, int]:
    """Estimated tokens, with the prompt cache's reads and writes for the prefixes it marks."""
    return {**cache.usage(body, state.cached_prompts), "output_tokens": _tokens(content)}
