"""What the agent's model turn sends: the system prompt, the brief in words, cache breakpoints."""

from __future__ import annotations

import copy
from typing import Any

from activities.agent.tools import CODER_TOOLS
from activities.llm_tools import (
    DIAGNOSIS_HEADING,
    FEEDBACK_HEADING,
    REVIEW_HEADING,
    STEP_HEADING,
    render_plan,
    tail,
)
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import Brief
from cofounder.settings import Role, Settings

EPHEMERAL = {"type": "ephemeral"}
AGENT_PROMPTS = {
    "coder": "You are the coder of a senior technical co-founder team, working in the "
    "project's workspace through tools: list_files and read_file to look, write_file, "
    "edit_file and delete_file to change it, search_files to find things, run_command to run "
    "anything (the tests too; the network is off). Implement the plan as a senior engineer "
    "would: read before you change, keep changes focused, make the tests pass. When a "
    "diagnosis of failing tests is given, fix the cause. When you are done, answer with a short "
    "summary of what you changed and no tool call.",
}


async def brief_text(store: ArtifactStore, brief: Brief, opening: bool) -> str:
    """The words of `brief`: an opening (the goal, the plan, the step) and what failed or
    what the reviewer found; a follow-up in a step's conversation has only the latter."""
    text = await _opening(store, brief) if opening else "The tests still fail."
    if brief.feedback_ref and opening:
        text += "\n\n" + feedback_text(await store.get_json(brief.feedback_ref))
    if brief.memory_ref and opening:
        text += "\n\n" + (await store.get_json(brief.memory_ref))["text"]
    if brief.diagnosis_ref:
        diagnosis = await store.get_json(brief.diagnosis_ref)
        text += f"\n\n{DIAGNOSIS_HEADING}\n{diagnosis['summary']}\n\nFix: {diagnosis['fix']}"
    if brief.review_ref:
        review = await store.get_json(brief.review_ref)
        findings = "\n".join(f"- {comment}" for comment in review.get("comments", []))
        text += f"\n\n{REVIEW_HEADING}\n{review['summary']}\n{findings}"
    if brief.log_ref:
        output = (await store.get_bytes(brief.log_ref)).decode("utf-8", errors="replace")
        text += f"\n\nThe failing test run's output:\n{tail(output)}"
    return text


async def _opening(store: ArtifactStore, brief: Brief) -> str:
    plan = await store.get_json(brief.plan_ref)
    text = f"Goal: {brief.goal}\n\nPlan:\n{render_plan(plan)}\n\n"
    steps = plan.get("steps", [])
    if brief.step is not None and brief.step <= len(steps):
        text += step_text(steps, brief.step) + "\n\n"
    if brief.feedback_ref:
        text += (
            "The plan is done and its pull request is open. Change the code to answer the "
            "feedback below, keep the project's tests passing, and change nothing else. "
        )
    return text + "Start by looking at the workspace."


def feedback_text(gathered: dict[str, Any]) -> str:
    """The feedback an iteration answers, item by item: who said it where, and the thread a
    review comment belongs to."""
    parts = [f"{FEEDBACK_HEADING} (iteration {gathered.get('iteration', '?')}):"]
    for number, item in enumerate(gathered.get("items", []), 1):
        where = f" on {item['path']}" if item.get("path") else ""
        where += f" line {item['line']}" if item.get("line") else ""
        kind, author = item.get("kind", "comment"), item.get("author", "?")
        parts.append(f"{number}. {kind} by @{author}{where}:")
        parts.append(_quoted(item.get("body", "")))
        thread = item.get("thread") or {}
        if thread.get("diff_hunk"):
            parts.append(f"   About this code:\n{_quoted(thread['diff_hunk'])}")
        earlier = [c for c in thread.get("comments", []) if c.get("body") != item.get("body")]
        for comment in earlier:
            parts.append(f"   In the same thread, @{comment.get('author', '?')}:")
            parts.append(_quoted(comment.get("body", "")))
    return "\n".join(parts)


def _quoted(text: str) -> str:
    return "\n".join(f"   > {line}" for line in str(text).strip().splitlines() or [""])


def request_body(
    settings: Settings, role: Role, messages: list[dict[str, Any]], model: str | None = None
) -> dict[str, Any]:
    """The request, with cache breakpoints on the stable prefix (system prompt and tools)
    and on the newest message, so each turn reads the earlier ones from the cache."""
    tools = copy.deepcopy(CODER_TOOLS)
    tools[-1]["cache_control"] = EPHEMERAL
    return {
        "model": model or settings.model_for(role),
        "max_tokens": settings.llm_max_tokens,
        "system": [{"type": "text", "text": AGENT_PROMPTS[role], "cache_control": EPHEMERAL}],
        "tools": tools,
        "messages": cached_tail(messages),
    }


def step_text(steps: list[dict[str, Any]], number: int) -> str:
    """What the coder is asked to do in step `number` (1-based) of the plan's `steps`."""
    step = steps[number - 1]
    files = ", ".join(step.get("files", [])) or "as needed"
    done = "The steps before it are done: their code is in the workspace. " if number > 1 else ""
    return (
        f"{STEP_HEADING} {number} of {len(steps)}: {step['title']}\n"
        f"{step.get('description') or ''}\nFiles: {files}\n"
        f"{done}Do this step only, and leave the project's tests passing; the steps after it "
        "come later."
    )


def with_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The conversation with `note` added to its last (user) message."""
    last = messages[-1]
    content = last["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    return [*messages[:-1], {**last, "content": [*blocks, {"type": "text", "text": note}]}]


def cached_tail(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy whose newest message's last block is a cache breakpoint."""
    marked = copy.deepcopy(messages)
    last = marked[-1]
    if isinstance(last["content"], str):
        last["content"] = [{"type": "text", "text": last["content"]}]
    if last["content"]:
        last["content"][-1]["cache_control"] = EPHEMERAL
    return marked
