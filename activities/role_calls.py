"""One model call of a role through the call journal: a free answer, or one forced to its tool."""

from __future__ import annotations

from typing import Any, TypeVar

import anthropic
import structlog
from anthropic.types import Message, ToolUseBlock
from pydantic import BaseModel, ValidationError

from activities.errors import InvalidModelOutput
from activities.journal import JournaledCalls
from activities.llm_tools import SYSTEM_PROMPTS, TOOLS, describe_errors
from activities.model_api import create_message
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import Usage
from cofounder.settings import Role, Settings

log = structlog.get_logger()

EPHEMERAL = {"type": "ephemeral"}

Output = TypeVar("Output", bound=BaseModel)


class RoleCalls:
    """The roles' model calls: each answer is paid for once and has exactly one ledger row."""

    def __init__(
        self, client: anthropic.AsyncAnthropic, settings: Settings, calls: JournaledCalls
    ) -> None:
        self.client = client
        self.settings = settings
        self.calls = calls

    async def forced(
        self,
        store: ArtifactStore,
        role: Role,
        build_id: str,
        prompt: str,
        output: type[Output],
        allowance: int | None,
        step: int | None = None,
        model: str | None = None,
    ) -> tuple[Output, Usage]:
        """One call that must answer with the role's tool; its input validated as `output`."""
        tool = TOOLS[role]["name"]
        messages = [{"role": "user", "content": prompt}]
        choice = {"type": "tool", "name": tool}
        message, key, usage = await self.call(
            store, role, build_id, 0, messages, choice, allowance=allowance, step=step, model=model
        )
        calls = [b for b in message.content if isinstance(b, ToolUseBlock) and b.name == tool]
        try:
            if not calls:
                raise InvalidModelOutput(f"the {role} answered without calling {tool}")
            return output.model_validate(calls[0].input), usage
        except (ValidationError, InvalidModelOutput) as err:
            reason = describe_errors(err) if isinstance(err, ValidationError) else str(err)
            log.warning("invalid model output", build_id=build_id, role=role, reason=reason)
            problem = InvalidModelOutput(f"the {role}'s {tool} input was invalid: {reason}")
            # The retry asks again instead of replaying this answer.
            raise await self.calls.reject(store, key, problem) from None

    async def call(
        self,
        store: ArtifactStore,
        role: Role,
        build_id: str,
        turn: int,
        messages: list[dict[str, Any]],
        tool_choice: dict[str, Any] | None = None,
        *,
        allowance: int | None = None,
        step: int | None = None,
        model: str | None = None,
    ) -> tuple[Message, str, Usage]:
        """One model call for `role` (with `model`, else the role's configured one); the system
        prompt is marked for prompt caching."""
        model = model or self.settings.model_for(role)
        system = {"type": "text", "text": SYSTEM_PROMPTS[role], "cache_control": EPHEMERAL}
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": self.settings.llm_max_tokens,
            "system": [system],
            "messages": list(messages),
            "tools": [TOOLS[role]],
        }
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        return await self.calls.call(
            store=store,
            build_id=build_id,
            role=role,
            turn=turn,
            body=body,
            price=self.settings.model_prices[model],
            create=lambda: create_message(self.client, body),
            allowance_micro_usd=allowance,
            step=step,
        )
