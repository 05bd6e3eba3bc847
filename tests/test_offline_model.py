"""The offline model over HTTP: the real anthropic SDK against the scripted co-founder."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, ToolUseBlock

from cofounder.offline_model import cache, script
from cofounder.offline_model.reply import MessagesRequest
from tests.helpers import inject_faults, model_stats

TOOLS = {
    role: [{"name": tool, "description": role, "input_schema": {"type": "object"}}]
    for role, tool in [
        ("architect", "submit_plan"),
        ("coder", "write_file"),
        ("debugger", "submit_diagnosis"),
        ("reviewer", "submit_review"),
    ]
}
EPHEMERAL = {"type": "ephemeral"}
CACHED_SYSTEM = [
    {"type": "text", "text": "You plan builds. " * 20, "cache_control": {"type": "ephemeral"}}
]


def client(url: str, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0, **options)


async def create(url: str, **body: Any) -> Message:
    """A Messages API call through the SDK; bodies are plain dicts, as the activities send."""
    message: Message = await client(url).messages.create(
        model="claude-haiku-4-5", max_tokens=1024, **body
    )
    return message


async def ask(url: str, role: str, content: Any = "Goal: slug titles") -> Message:
    messages = [{"role": "user", "content": content}]
    return await create(url, system=CACHED_SYSTEM, messages=messages, tools=TOOLS[role])


def inputs(message: Message) -> list[dict[str, Any]]:
    """The tool inputs of a response, in order."""
    return [dict(b.input) for b in message.content if isinstance(b, ToolUseBlock)]


async def test_architect_answers_a_plan_naming_the_goal(offline_model: str) -> None:
    message = await ask(offline_model, "architect", "Goal: URL slugs for blog posts\nProject: x")
    assert message.stop_reason == "tool_use" and message.id.startswith("msg_")
    (block,) = message.content
    assert isinstance(block, ToolUseBlock) and block.name == "submit_plan"
    (plan,) = inputs(message)
    assert "URL slugs for blog posts" in plan["title"]
    assert plan["files"] == script.FILES and plan["steps"] and plan["summary"]


async def test_usage_reports_prompt_cache_creation_then_reads(offline_model: str) -> None:
    first = await ask(offline_model, "architect")
    second = await ask(offline_model, "architect")
    created = first.usage.cache_creation_input_tokens or 0
    assert created > 0 and second.usage.cache_read_input_tokens == created
    assert first.usage.cache_read_input_tokens == second.usage.cache_creation_input_tokens == 0
    assert first.usage.input_tokens == second.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    # Same request, same answer: retries and replays see identical content.
    assert first.content == second.content and first.id == second.id


async def test_coder_writes_files_fixes_on_diagnosis_and_finishes(offline_model: str) -> None:
    first = await ask(offline_model, "coder")
    writes = {write["path"]: write["content"] for write in inputs(first)}
    assert first.stop_reason == "tool_use" and set(writes) == set(script.FILES)
    assert 'r"[^a-z0-9]"' in writes["slugkit/__init__.py"]  # the scripted first-attempt bug

    fixed = await ask(offline_model, "coder", f"Goal: x\n\n{script.DIAGNOSIS_HEADING}\nfix it")
    module = inputs(fixed)[0]["content"]
    assert 'r"[^a-z0-9]+"' in module

    calls = [b for b in first.content if isinstance(b, ToolUseBlock)]
    results = [{"type": "tool_result", "tool_use_id": b.id, "content": "ok"} for b in calls]
    assistant = [b.model_dump(exclude_none=True) for b in first.content]
    conversation = [
        {"role": "user", "content": "Goal: x"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": results},
    ]
    done = await create(offline_model, messages=conversation, tools=TOOLS["coder"])
    assert done.stop_reason == "end_turn" and done.content[0].type == "text"


async def test_debugger_and_reviewer_read_the_request(offline_model: str) -> None:
    (diagnosis,) = inputs(await ask(offline_model, "debugger", "AssertionError: 'hello---world'"))
    assert "not collapsed" in diagnosis["summary"] and diagnosis["fix"]
    fixed = script.project_files("x", fixed=True)["slugkit/__init__.py"]
    assert inputs(await ask(offline_model, "reviewer", fixed))[0]["approved"] is True
    buggy = script.project_files("x", fixed=False)["slugkit/__init__.py"]
    assert inputs(await ask(offline_model, "reviewer", buggy))[0]["approved"] is False


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.OverloadedError),
        (500, "api_error", anthropic.InternalServerError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (400, "invalid_request_error", anthropic.BadRequestError),
    ],
)
async def test_faults_answer_anthropic_errors(
    offline_model: str, status: int, kind: str, error: type[anthropic.APIStatusError]
) -> None:
    inject_faults(offline_model, {"status": status, "retry_after": 3})
    with pytest.raises(error) as raised:
        await ask(offline_model, "architect")
    body = raised.value.body
    assert isinstance(body, dict) and set(body) == {"type", "error"} and body["type"] == "error"
    assert body["error"]["type"] == kind and body["error"]["message"]
    assert raised.value.response.headers["retry-after"] == "3"
    await ask(offline_model, "architect")  # a fault applies once
    assert model_stats(offline_model)["requests"] == 2 and model_stats(offline_model)["served"] == 1


async def test_role_scoped_faults_wait_for_their_role_in_order(offline_model: str) -> None:
    inject_faults(offline_model, {"status": 500, "role": "coder"}, {"status": 529})
    with pytest.raises(anthropic.OverloadedError):  # the unscoped fault, not the coder's
        await ask(offline_model, "architect")
    await ask(offline_model, "architect")
    with pytest.raises(anthropic.InternalServerError):
        await ask(offline_model, "coder")
    stats = model_stats(offline_model)
    assert stats["by_role"] == {
        "architect": {"requests": 2, "served": 1},
        "coder": {"requests": 1, "served": 0},
    }
    httpx.post(f"{offline_model}/_control/reset").raise_for_status()
    assert model_stats(offline_model) == {
        "requests": 0,
        "served": 0,
        "garbled": 0,
        "distinct_answers": 0,
        "in_flight": 0,
        "by_role": {},
        "pending_faults": 0,
    }


async def test_malformed_fault_breaks_the_tool_input(offline_model: str) -> None:
    inject_faults(offline_model, {"malformed": True})
    (plan,) = inputs(await ask(offline_model, "architect"))
    assert "files" not in plan and not isinstance(plan["title"], str)
    inject_faults(offline_model, {"malformed": True, "role": "coder"})
    first = inputs(await ask(offline_model, "coder"))[0]
    assert first["path"].startswith("../") and "content" not in first


async def test_garbled_fault_answers_200_with_a_body_the_sdk_cannot_trust(
    offline_model: str,
) -> None:
    inject_faults(offline_model, {"garbled": "not-json"}, {"garbled": "bad-content"})
    # The SDK hands back whatever came, unchecked: the page's text, and a "Message" of strings.
    page = await ask(offline_model, "architect")
    assert isinstance(page, str) and "Bad Gateway" in page  # type: ignore[unreachable]
    unchecked = await ask(offline_model, "architect")
    assert unchecked.content == "no blocks here"
    assert model_stats(offline_model) | {"by_role": None} == {
        "requests": 2,
        "served": 0,
        "garbled": 2,
        "distinct_answers": 0,
        "in_flight": 0,
        "by_role": None,
        "pending_faults": 0,
    }


async def test_delay_then_answer_and_a_hung_up_client_is_not_served(offline_model: str) -> None:
    inject_faults(offline_model, {"delay": 0.3})
    started = asyncio.get_running_loop().time()
    await ask(offline_model, "architect")
    assert asyncio.get_running_loop().time() - started >= 0.3

    inject_faults(offline_model, {"delay": 0.5})
    with pytest.raises(anthropic.APITimeoutError):
        await client(offline_model, timeout=0.2).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    await asyncio.sleep(0.6)  # past the delay: a server that missed the hang-up would count it
    assert model_stats(offline_model) | {"by_role": None} == {
        "requests": 2,
        "served": 1,
        "garbled": 0,
        "distinct_answers": 1,
        "in_flight": 0,
        "by_role": None,
        "pending_faults": 0,
    }


async def test_api_key_and_request_shape_are_checked(offline_model: str) -> None:
    url = f"{offline_model}/v1/messages"
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    for header in ({"x-api-key": "k"}, {"authorization": "Bearer k"}):
        assert httpx.post(url, json=body, headers=header).status_code == 200
    refused = httpx.post(f"{offline_model}/_control/faults", json=[{"status": 200}])
    assert refused.status_code == 422 and model_stats(offline_model)["pending_faults"] == 0
    bad = httpx.post(url, json={"model": "m", "messages": []}, headers={"x-api-key": "k"})
    assert bad.status_code == 400
    assert bad.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": bad.json()["error"]["message"]},
    }


def test_a_growing_conversation_reads_its_earlier_turns_from_the_cache() -> None:
    tools = [{"name": "t", "description": "d", "input_schema": {}, "cache_control": EPHEMERAL}]
    system = [{"type": "text", "text": "you are the coder " * 50, "cache_control": EPHEMERAL}]
    first_turn = [{"role": "user", "content": [{"type": "text", "text": "goal " * 400}]}]

    def request(messages: list[dict[str, Any]]) -> MessagesRequest:
        marked = json.loads(json.dumps(messages))
        marked[-1]["content"][-1]["cache_control"] = EPHEMERAL
        return MessagesRequest(
            model="m", max_tokens=10, tools=tools, system=system, messages=marked
        )

    cached: set[str] = set()
    one = cache.usage(request(first_turn), cached)
    assert one["cache_read_input_tokens"] == 0 and one["cache_creation_input_tokens"] > 500
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": [{"type": "text", "text": "reading " * 100}]},
        {"role": "user", "content": [{"type": "text", "text": "result " * 100}]},
    ]
    two = cache.usage(request(second_turn), cached)
    # Everything the first turn sent is read back; only the new turn is written.
    written_before = one["cache_creation_input_tokens"] + one["cache_read_input_tokens"]
    assert two["cache_read_input_tokens"] == written_before
    assert 0 < two["cache_creation_input_tokens"] < written_before
    other_model = cache.usage(request(second_turn).model_copy(update={"model": "n"}), cached)
    assert other_model["cache_read_input_tokens"] == 0
