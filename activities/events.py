"""The activities' side of a build's live events (cofounder/build_log.py): a command's output
streamed in chunks while it runs, and the keys that make an activity's events once-only.

A command's events are keyed by a fresh id: a retried activity runs its commands again, and
that second run is news. Events of what a retry reuses (a turn's journaled answer, a recorded
tool outcome) are keyed by the activity's identity, so they are written once.
"""

from __future__ import annotations

import codecs
import shlex
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from anthropic.types import Message, TextBlock, ToolUseBlock
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.sandbox import Command, CommandResult, SandboxSession
from cofounder import build_log
from cofounder.build_log import RESULT_CHARS, SUMMARY_CHARS, TEXT_CHARS, clip, entry
from cofounder.payloads import ToolsRequest, TurnRequest, Usage

if TYPE_CHECKING:  # tool_call imports this module
    from activities.agent.tool_call import ToolOutcome

log = structlog.get_logger()

CHUNK_CHARS = 4096  # output sent in one event at most
FLUSH_SECONDS = 0.5  # output waits at most this long for more before it is sent
STREAMED_CHARS = 65_536  # a command's output streamed at most; its whole log is an artifact


# What a tool call's arguments are summed up by, in order of preference.
_SUMMARY_ARGUMENTS = ("command", "path", "pattern")


def activity_key(*parts: object) -> str:
    """A key stable across this activity's retries: its run, its id, and `parts`."""
    info = activity.info()
    return ":".join(str(p) for p in (info.workflow_run_id, info.activity_id, *parts))


def turn_event(
    request: TurnRequest, role: str, model: str, message: Message, usage: Usage
) -> dict[str, Any]:
    """A model turn's answer: its words (cut), the tools it calls, its tokens and cost."""
    text = "\n".join(block.text for block in message.content if isinstance(block, TextBlock))
    calls = [b for b in message.content if isinstance(b, ToolUseBlock)]
    data = {
        "role": role,
        "step": request.brief.step,
        "model": model,
        "text": clip(text, TEXT_CHARS),
        "tool_calls": [{"id": call.id, "name": call.name} for call in calls],
        "stop_reason": message.stop_reason,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": usage.cost_micro_usd / 1_000_000,
    }
    return entry(request.build_id, "turn", f"turn:{activity_key()}", data)


def tool_event(request: ToolsRequest, call: ToolUseBlock, outcome: ToolOutcome) -> dict[str, Any]:
    """One tool call as it ran: what it was asked (summed up) and the start of its answer."""
    arguments = call.input if isinstance(call.input, dict) else {}
    summary = next((str(arguments[k]) for k in _SUMMARY_ARGUMENTS if k in arguments), "")
    data = {
        "role": "coder",
        "step": request.step,
        "call_id": call.id,
        "name": call.name,
        "summary": clip(summary, SUMMARY_CHARS),
        "is_error": outcome.is_error,
        "result": clip(outcome.content, RESULT_CHARS),
    }
    return entry(request.build_id, "tool_call", f"tool:{activity_key(call.id)}", data)


class CommandLog:
    """Runs commands in a build's session, streaming each one's start, output and end into the
    log; without `sessions` it only runs them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | None,
        build_id: str,
        step: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.build_id = build_id
        self.step = step

    async def run(self, session: SandboxSession, command: Command) -> CommandResult:
        if self.sessions is None:
            return await session.run(command)
        line = command.shell if command.shell is not None else shlex.join(command.as_argv())
        stream = _Stream(self, command.purpose, clip(line, SUMMARY_CHARS))
        await stream.started()
        result = await session.run(command, on_output=stream.add)
        await stream.ended(result)
        return result

    async def write(self, *rows: dict[str, Any]) -> None:
        assert self.sessions is not None
        await write(self.sessions, *rows)


async def write(sessions: async_sessionmaker[AsyncSession], *rows: dict[str, Any]) -> None:
    """Best effort, for events of work already done and kept (a command's whole log, a turn's
    answer, a tool's outcome): one the database refused is logged, never raised, so the
    stream's trouble never fails or repeats the work."""
    try:
        await build_log.append(sessions, *rows)
    except Exception as err:
        build_ids = sorted({row["build_id"] for row in rows})
        log.warning("build event not written", build_ids=build_ids, error=str(err))


class _Stream:
    """One command's events: `command` running, `output` chunks in order, `command` done."""

    def __init__(self, commands: CommandLog, purpose: str, line: str) -> None:
        self.commands = commands
        self.id = uuid.uuid4().hex[:16]
        self.about = {"command_id": self.id, "step": commands.step, "purpose": purpose}
        self.line = line
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.sent = 0  # characters streamed so far
        self.chunks = 0
        self.flushed_at = time.monotonic()

    def _command(self, state: str, **fields: Any) -> dict[str, Any]:
        data = {**self.about, "command": self.line, "state": state, **fields}
        return entry(self.commands.build_id, "command", f"cmd:{self.id}:{state}", data)

    async def started(self) -> None:
        await self.commands.write(self._command("running", exit_code=None, timed_out=False))

    async def add(self, chunk: bytes) -> None:
        if self.sent >= STREAMED_CHARS:
            return
        self.pending += self.decoder.decode(chunk)
        waited = time.monotonic() - self.flushed_at
        if len(self.pending) >= CHUNK_CHARS or waited >= FLUSH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        rows = []
        while self.pending and self.sent < STREAMED_CHARS:
            room = min(CHUNK_CHARS, STREAMED_CHARS - self.sent)
            text, self.pending = self.pending[:room], self.pending[room:]
            self.sent += len(text)
            if self.sent >= STREAMED_CHARS:
                text += "\n[… the rest of the output is in the command's log]\n"
            rows.append(self._output(text))
        self.pending = ""
        self.flushed_at = time.monotonic()
        await self.commands.write(*rows)

    def _output(self, text: str) -> dict[str, Any]:
        self.chunks += 1
        data = {"command_id": self.id, "text": text}
        return entry(self.commands.build_id, "output", f"out:{self.id}:{self.chunks}", data)

    async def ended(self, result: CommandResult) -> None:
        self.pending += self.decoder.decode(b"", final=True)
        await self._flush()
        done = self._command("done", exit_code=result.exit_code, timed_out=result.timed_out)
        await self.commands.write(done)
