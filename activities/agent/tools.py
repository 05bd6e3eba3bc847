"""The coder's tools, executed against a build's sandbox session.

`execute` runs one Anthropic tool call and answers with a `ToolOutcome` for its tool_result.
Whatever the model got wrong (bad input, a missing file, an ambiguous edit) comes back as an
`is_error` outcome it can act on; only infrastructure failures (`SandboxGone`, the store, a bug)
raise, so the activity fails or retries as it would for any other step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from activities.agent import command_tools, file_tools
from activities.agent import tool_inputs as inputs
from activities.agent.tool_call import ToolContext, ToolLimits, ToolOutcome, refused
from activities.agent.tool_inputs import CODER_TOOLS, TOOL_NAMES
from activities.errors import BadRequest, Unavailable
from activities.events import CommandLog
from activities.llm_tools import describe_errors
from activities.sandbox import SandboxSession
from cofounder.artifacts import ArtifactStore, UnsafePath

__all__ = ["CODER_TOOLS", "TOOL_NAMES", "ToolLimits", "ToolOutcome", "execute", "tool_result_block"]

# The tools using the session's file calls, whose errors may be the model's doing (a missing
# file); the others run commands, and an error from running one is never the model's.
_FILE_TOOLS = frozenset({"list_files", "read_file", "write_file", "edit_file", "delete_file"})


async def execute(
    session: SandboxSession,
    store: ArtifactStore,
    name: str,
    tool_input: object,
    limits: ToolLimits,
    commands: CommandLog | None = None,
) -> ToolOutcome:
    """Run one of the coder's tool calls in `session`, keeping logs in `store` (the owner's)
    and streaming commands through `commands`; the model's mistakes come back as errors, the
    infrastructure's are raised."""
    if name not in _TOOLS:
        return refused(f"unknown tool {name!r}; the tools are: {', '.join(TOOL_NAMES)}")
    model, handler = _TOOLS[name]
    try:
        args = model.model_validate(tool_input)
    except ValidationError as err:
        return refused(f"invalid {name} input: {describe_errors(err)}")
    path = str(getattr(args, "path", ""))
    try:
        return await handler(ToolContext(session, store, limits, commands), args)
    except (OSError, UnsafePath, BadRequest, Unavailable) as err:
        problem = await _models_doing(session, path, err) if name in _FILE_TOOLS else None
        if problem is None:
            raise
        return refused(f"{name} failed: {problem}")


async def _models_doing(session: SandboxSession, path: str, err: Exception) -> str | None:
    """What the model got wrong, when `err` is its doing; None when it is the infrastructure's."""
    if isinstance(err, IsADirectoryError):
        return f"{path!r} is a folder, not a file"
    if isinstance(err, NotADirectoryError):
        return f"a part of {path!r} is a file, not a folder"
    if isinstance(err, FileNotFoundError):
        return f"no such file in the workspace: {path!r}"
    if isinstance(err, UnsafePath):
        return str(err)
    if isinstance(err, BadRequest | Unavailable) and path not in ("", "."):
        # E2B answers a file/folder mix-up with a request error: only that one is the model's.
        return _clash(await session.list_files(), path)
    return None


def _clash(files: dict[str, int], path: str) -> str | None:
    """A folder where `path` should be a file, or a file where one of its folders should be."""
    if path not in files and any(p.startswith(path + "/") for p in files):
        return f"{path!r} is a folder, not a file"
    parts = path.split("/")
    for n in range(1, len(parts)):
        if "/".join(parts[:n]) in files:
            return f"{'/'.join(parts[:n])!r} is a file, not a folder"
    return None


def tool_result_block(tool_use_id: str, outcome: ToolOutcome) -> dict[str, Any]:
    """The Messages API `tool_result` content block answering one tool_use block."""
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": outcome.content,
    }
    if outcome.is_error:
        block["is_error"] = True
    return block


Handler = Callable[[ToolContext, Any], Awaitable[ToolOutcome]]
_TOOLS: dict[str, tuple[type[BaseModel], Handler]] = {
    "list_files": (inputs.ListFiles, file_tools.list_files),
    "read_file": (inputs.ReadFile, file_tools.read_file),
    "search_files": (inputs.SearchFiles, command_tools.search_files),
    "write_file": (inputs.WriteFile, file_tools.write_file),
    "edit_file": (inputs.EditFile, file_tools.edit_file),
    "delete_file": (inputs.DeleteFile, file_tools.delete_file),
    "run_command": (inputs.RunCommand, command_tools.run_command),
}
