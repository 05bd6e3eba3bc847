"""The agent loop's two activities: one model turn, and the tool calls of that turn run in the
build's sandbox. The loop itself is the workflow's; the conversation travels between them as an
artifact reference, so history holds references and short summaries, never contents.

A turn's answer is kept in the journal under the activity's identity (activities/journal.py):
a retried turn whose call already completed reuses it, and its ledger row is written once.
"""

from __future__ import annotations

import dataclasses
import json
from typing import cast

import anthropic
import structlog
from anthropic.types import Message, ToolUseBlock
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import events
from activities.agent import conversation
from activities.agent.prompt import AGENT_PROMPTS, brief_text, request_body, with_note
from activities.agent.tool_outcomes import outcome_key, recorded_outcome, signature
from activities.agent.tools import ToolLimits, execute, tool_result_block
from activities.errors import BadRequest, activity_boundary
from activities.events import CommandLog, tool_event, turn_event
from activities.journal import JournaledCalls
from activities.model_api import create_message
from activities.sandbox import SandboxRuntime
from activities.sandbox.projects import COMMAND_ENV
from activities.sandbox.sessions import reconnect
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import (
    ToolCall,
    ToolOutcomeSummary,
    ToolsRequest,
    ToolsResult,
    TurnRequest,
    TurnResult,
)
from cofounder.settings import Role, Settings

log = structlog.get_logger()


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
        self.sessions = sessions
        self.runtime = runtime

    @activity.defn
    @activity_boundary
    async def model_turn(self, request: TurnRequest) -> TurnResult:
        """One call of the model on the conversation so far; its answer is appended."""
        store = self.store.for_owner(request.owner)
        if request.role not in AGENT_PROMPTS:
            raise BadRequest(f"no agent loop for the {request.role!r} role")
        role = cast(Role, request.role)
        talk = conversation.Conversation()
        if request.conversation_ref is not None:
            talk = await conversation.load(store, request.conversation_ref)
        if request.conversation_ref is None or request.follow_up:
            text = await brief_text(store, request.brief, opening=not talk.messages)
            talk.messages.append({"role": "user", "content": text})
        if request.note:
            talk.replace_last(with_note(talk.messages, request.note)[-1])
        body = request_body(self.settings, role, talk.messages, request.model)
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
        talk.messages.append({"role": "assistant", "content": answer})
        calls = [b for b in message.content if isinstance(b, ToolUseBlock)]
        await events.write(self.sessions, turn_event(request, role, body["model"], message, usage))
        return TurnResult(
            response_ref=await store.put_json(message.model_dump(mode="json")),
            conversation_ref=await conversation.save(store, talk),
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
        commands = CommandLog(self.sessions, request.build_id, request.step)
        results, outcomes, changed = [], [], False
        for call in (b for b in response.content if isinstance(b, ToolUseBlock)):
            key = outcome_key(call)
            outcome = await recorded_outcome(store, key)
            if outcome is None:
                outcome = await execute(session, store, call.name, call.input, limits, commands)
                await store.blobs.write(key, json.dumps(dataclasses.asdict(outcome)).encode())
            await events.write(self.sessions, tool_event(request, call, outcome))
            results.append(tool_result_block(call.id, outcome))
            outcomes.append(
                ToolOutcomeSummary(
                    name=call.name,
                    signature=signature(call, outcome.content, outcome.is_error),
                    is_error=outcome.is_error,
                )
            )
            changed = changed or outcome.changed
        talk = await conversation.load(store, request.conversation_ref)
        talk.messages.append({"role": "user", "content": results})
        return ToolsResult(
            conversation_ref=await conversation.save(store, talk),
            outcomes=outcomes,
            changed=changed,
            sandbox=sandbox,
        )
