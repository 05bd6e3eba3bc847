"""The offline model: a local server speaking Anthropic's Messages API for the scripted co-founder.

Builds reach it through the real `anthropic` SDK (only the base URL changes). The role is read
from the request's tool names; answers are a pure function of the request, so retries and replays
get the same answer. `/_control/*` lets tests queue faults and read counters.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from cofounder.offline_model import agent, cache, node, reviewed, script
from cofounder.offline_model.faults import ERROR_TYPES, Fault, ServerState

ROLE_BY_TOOL = {
    "submit_plan": "architect",
    "write_file": "coder",
    "submit_diagnosis": "debugger",
    "submit_review": "reviewer",
}
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


def create_app() -> FastAPI:
    """The offline model's ASGI app, with its own fault queue and counters."""
    app = FastAPI(title="cofounder offline model", docs_url=None, redoc_url=None)
    state = ServerState()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        state.in_flight += 1
        try:
            return await answer(request)
        finally:
            state.in_flight -= 1

    async def answer(request: Request) -> Response:
        try:
            raw = await request.json()
        except ValueError:
            return error(400, "the request body is not valid JSON")
        role = _role(raw)
        state.count_request(role)
        if not _has_api_key(request):
            return error(401, "an API key is required (x-api-key or Authorization: Bearer)")
        fault = state.take_fault(role)
        if fault is not None and fault.status is not None:
            return error(fault.status, f"injected fault ({fault.status})", fault.retry_after)
        if fault is not None and fault.garbled is not None:
            state.garbled += 1
            return garbled(fault.garbled)
        try:
            body = MessagesRequest.model_validate(raw)
        except ValidationError as err:
            return error(400, f"invalid request: {err.errors()[0]['msg']}")
        if fault is not None and fault.delay:
            if await _client_left(request, fault.delay):
                return error(500, "client disconnected")
        message = respond(body, role, state, fault)
        state.count_served(role, message["id"])
        return JSONResponse(message, headers={"request-id": message["id"].replace("msg_", "req_")})

    @app.post("/_control/faults")
    async def add_faults(faults: list[Fault]) -> dict[str, int]:
        """Queue faults; each applies once, to the next request of its role, in order."""
        state.faults.extend(faults)
        return {"pending": len(state.faults)}

    @app.get("/_control/stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/_control/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return app


def serve(host: str, port: int) -> None:
    """Run the offline model until interrupted (`cofounder offline-model`)."""
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    """An error in the Messages API's shape, with the matching status."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def garbled(kind: str) -> Response:
    """A 200 that is not a Messages API response (a proxy's error page, a changed schema)."""
    if kind == "not-json":
        return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
    body = {"id": "msg_garbled", "type": "message", "role": "assistant", "model": "unknown"}
    return JSONResponse({**body, "content": "no blocks here", "usage": {"input_tokens": "?"}})


async def _client_left(request: Request, delay: float) -> bool:
    """Sleep `delay` seconds; True if the client hung up meanwhile (that call was not served)."""
    deadline = asyncio.get_running_loop().time() + delay
    while asyncio.get_running_loop().time() < deadline:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(0.05)
    return await request.is_disconnected()


def _has_api_key(request: Request) -> bool:
    # Like the real API: older SDKs send x-api-key, newer ones send the key as a bearer token.
    bearer = request.headers.get("authorization", "").removeprefix("Bearer").strip()
    return bool(request.headers.get("x-api-key", "").strip() or bearer)


def _role(raw: Any) -> str:
    tools = raw.get("tools") if isinstance(raw, dict) else None
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and tool.get("name") in ROLE_BY_TOOL:
            return ROLE_BY_TOOL[tool["name"]]
    return "chat"


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
        "architect": ("submit_plan", lambda: script.plan(goal)),
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
    if node.wanted(goal):
        calls = node.coder_turn(messages, goal, text, opening, fault)
    elif script.REVIEW_HEADING in text:
        calls = reviewed.coder_turn(agent.turn_of(messages))
    else:
        calls = agent.coder_turn(
            messages, goal, text, opening, fault.slow_tests, bool(fault.malformed), fault.stuck
        )
    words = {"type": "text", "text": agent.summary(agent.turn_of(messages))}
    return [words, *(_tool_use(digest, i, name, args) for i, (name, args) in enumerate(calls))]


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
