"""The agent loop's two activities: one model turn, and the tool calls of that turn run in the
build's sandbox. The loop itself is the workflow's; the conversation travels between them as an
artifact reference, so history holds references and short summaries, never contents.

A turn's answer is kept in the journal under the activity's identity (activities/journal.py):
a retried turn whose call already completed reuses it, and its ledger row is written once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any, cast

import anthropic
import structlog
from anthropic.types import Message, ToolUseBlock
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.agent import conversation
from activities.agent.tools import (
    CODER_TOOLS,
    ToolLimits,
    ToolOutcome,
    execute,
    tool_result_block,
)
from activities.errors import BadRequest, activity_boundary
from activities.journal import JournaledCalls
from activities.llm_tools import (
    DIAGNOSIS_HEADING,
    REVIEW_HEADING,
    STEP_HEADING,
    render_plan,
    tail,
)
from activities.model_api import create_message
from activities.sandbox import SandboxRuntime
from activities.sandbox.activities import reconnect
from activities.sandbox.projects import COMMAND_ENV
from cofounder.artifacts import ArtifactNotFound, ArtifactStore
from cofounder.payloads import (
    Brief,
    ToolCall,
    ToolOutcomeSummary,
    ToolsRequest,
    ToolsResult,
    TurnRequest,
    TurnResult,
)
from cofounder.settings import Role, Settings

log = structlog.get_logger()

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


class AgentActivities:
    """A model turn, and its tool calls run against the build's sandbox session."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        store: ArtifactStore,
        sessions: async_sessionmaker[AsyncSession],
        runtime: SandboxRuntime,
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.calls = JournaledCalls(sessions)
        self.runtime = runtime

    @activity.defn
    @activity_boundary
    async def model_turn(self, request: TurnRequest) -> TurnResult:
        """One call of the model on the conversation so far; its answer is appended."""
        store = self.store.for_owner(request.owner)
        if request.role not in AGENT_PROMPTS:
            raise BadRequest(f"no agent loop for the {request.role!r} role")
        role = cast(Role, request.role)
        messages: list[dict[str, Any]] = []
        if request.conversation_ref is not None:
            messages = await conversation.load(store, request.conversation_ref)
        if request.conversation_ref is None or request.follow_up:
            text = await self._brief_text(store, request.brief, opening=not messages)
            messages.append({"role": "user", "content": text})
        if request.note:
            messages = with_note(messages, request.note)
        body = self._body(role, messages)
        message, _, usage = await self.calls.call(
            store=store,
            build_id=request.build_id,
            role=role,
            turn=0,
            body=body,
            price=self.settings.model_prices[body["model"]],
            create=lambda: create_message(self.client, body),
            allowance_micro_usd=request.allowance_micro_usd,
            step=request.brief.step,
        )
        answer = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        messages = [*messages, {"role": "assistant", "content": answer}]
        calls = [b for b in message.content if isinstance(b, ToolUseBlock)]
        return TurnResult(
            response_ref=await store.put_json(message.model_dump(mode="json")),
            conversation_ref=await conversation.save(store, messages),
            tool_calls=[ToolCall(id=call.id, name=call.name) for call in calls],
            stop_reason=message.stop_reason,
            usage=usage,
        )

    @activity.defn
    @activity_boundary
    async def run_tools(self, request: ToolsRequest) -> ToolsResult:
        """Run the turn's tool calls in order; a bad call is answered with an error the model
        can correct, never raised."""
        store = self.store.for_owner(request.owner)
        response = Message.model_validate(await store.get_json(request.response_ref))
        session, sandbox = await reconnect(
            self.runtime, store, request.sandbox, request.build_id, request.owner, request.project
        )
        limits = ToolLimits(
            command_timeout=self.settings.sandbox_timeout_seconds,
            output_limit=self.settings.sandbox_output_limit_bytes,
            command_env=COMMAND_ENV,
        )
        results, outcomes, changed = [], [], False
        for call in (b for b in response.content if isinstance(b, ToolUseBlock)):
            key = _outcome_key(call)
            outcome = await _recorded(store, key)
            if outcome is None:
                outcome = await execute(session, store, call.name, call.input, limits)
                await store.blobs.write(key, json.dumps(dataclasses.asdict(outcome)).encode())
            results.append(tool_result_block(call.id, outcome))
            outcomes.append(
                ToolOutcomeSummary(
                    name=call.name,
                    signature=signature(call, outcome.content, outcome.is_error),
                    is_error=outcome.is_error,
                )
            )
            changed = changed or outcome.changed
        messages = await conversation.load(store, request.conversation_ref)
        messages.append({"role": "user", "content": results})
        return ToolsResult(
            conversation_ref=await conversation.save(store, messages),
            outcomes=outcomes,
            changed=changed,
            sandbox=sandbox,
        )

    async def _brief_text(self, store: ArtifactStore, brief: Brief, opening: bool) -> str:
        """The words of `brief`: an opening (the goal, the plan, the step) and what failed or
        what the reviewer found; a follow-up in a step's conversation has only the latter."""
        text = await self._opening(store, brief) if opening else "The tests still fail."
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

    async def _opening(self, store: ArtifactStore, brief: Brief) -> str:
        plan = await store.get_json(brief.plan_ref)
        text = f"Goal: {brief.goal}\n\nPlan:\n{render_plan(plan)}\n\n"
        steps = plan.get("steps", [])
        if brief.step is not None and brief.step <= len(steps):
            text += step_text(steps, brief.step) + "\n\n"
        return text + "Start by looking at the workspace."

    def _body(self, role: Role, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The request, with cache breakpoints on the stable prefix (system prompt and tools)
        and on the newest message, so each turn reads the earlier ones from the cache."""
        tools = copy.deepcopy(CODER_TOOLS)
        tools[-1]["cache_control"] = EPHEMERAL
        return {
            "model": self.settings.model_for(role),
            "max_tokens": self.settings.llm_max_tokens,
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


def _outcome_key(call: ToolUseBlock) -> str:
    """Where a tool call's outcome is kept for this activity execution: a retry of the tool run
    (its worker died) reuses what the calls already done answered instead of doing them again
    (an edit applied twice, a command run twice), so only a call cut off mid-way repeats."""
    info = activity.info()
    identity = [info.workflow_id, info.workflow_run_id, info.activity_id, call.id]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return f"tools/{digest[:2]}/{digest}.json"


async def _recorded(store: ArtifactStore, key: str) -> ToolOutcome | None:
    try:
        return ToolOutcome(**json.loads(await store.blobs.read(key)))
    except ArtifactNotFound:
        return None


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


def signature(call: ToolUseBlock, content: str, is_error: bool) -> str:
    """The same call answered the same way always has the same signature."""
    data = json.dumps([call.name, call.input, content, is_error], sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]
