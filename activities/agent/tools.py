"""The coder's tools, executed against a build's sandbox session.

`execute` runs one Anthropic tool call and answers with a `ToolOutcome` for its tool_result.
Whatever the model got wrong (bad input, a missing file, an ambiguous edit) comes back as an
`is_error` outcome it can act on; only infrastructure failures (`SandboxGone`, the store, a bug)
raise, so the activity fails or retries as it would for any other step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from activities.agent import tool_inputs as inputs
from activities.agent.tool_inputs import CODER_TOOLS, MAX_FILE_CHARS, TOOL_NAMES
from activities.errors import BadRequest, Unavailable
from activities.llm_tools import describe_errors
from activities.sandbox import Command, SandboxSession, snapshotted
from cofounder.artifacts import ArtifactStore, UnsafePath

__all__ = ["CODER_TOOLS", "TOOL_NAMES", "ToolLimits", "ToolOutcome", "execute", "tool_result_block"]

# What grep skips: history and installed dependencies, never the model's own code.
SEARCH_SKIPS = (".git", ".deps", "node_modules", "__pycache__")
# A match in a minified file can be one enormous line; the model needs only its start.
MAX_MATCH_LINE_CHARS = 500
SEARCH_TIMEOUT = 60.0
# The tools using the session's file calls, whose errors may be the model's doing (a missing
# file); the others run commands, and an error from running one is never the model's.
_FILE_TOOLS = frozenset({"list_files", "read_file", "write_file", "edit_file", "delete_file"})


@dataclass(frozen=True)
class ToolLimits:
    """How far one tool call may go, and how much of its answer the model is shown."""

    command_timeout: float = 600.0
    output_limit: int = 1_000_000  # bytes of a command's output kept in its log
    max_list_entries: int = 500
    max_read_chars: int = 100_000
    max_search_lines: int = 200
    max_tail_chars: int = 8_000
    # The environment of run_command: where installed dependencies are found.
    command_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call did, as the model is told it and as the build records it."""

    content: str  # the tool_result's text
    is_error: bool = False
    changed: bool = False  # the workspace's files may have changed
    log_ref: str | None = None  # run_command's full log in the artifact store


@dataclass(frozen=True)
class _Call:
    session: SandboxSession
    store: ArtifactStore
    limits: ToolLimits


def _refused(message: str) -> ToolOutcome:
    return ToolOutcome(message, is_error=True)


async def execute(
    session: SandboxSession, store: ArtifactStore, name: str, tool_input: object, limits: ToolLimits
) -> ToolOutcome:
    """Run one of the coder's tool calls in `session`, keeping logs in `store` (the owner's);
    the model's mistakes come back as errors, the infrastructure's are raised."""
    if name not in _TOOLS:
        return _refused(f"unknown tool {name!r}; the tools are: {', '.join(TOOL_NAMES)}")
    model, handler = _TOOLS[name]
    try:
        args = model.model_validate(tool_input)
    except ValidationError as err:
        return _refused(f"invalid {name} input: {describe_errors(err)}")
    path = str(getattr(args, "path", ""))
    try:
        return await handler(_Call(session, store, limits), args)
    except (OSError, UnsafePath, BadRequest, Unavailable) as err:
        problem = await _models_doing(session, path, err) if name in _FILE_TOOLS else None
        if problem is None:
            raise
        return _refused(f"{name} failed: {problem}")


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


def _under(path: str, folder: str) -> bool:
    return folder == "." or path == folder or path.startswith(folder + "/")


async def _list_files(call: _Call, args: inputs.ListFiles) -> ToolOutcome:
    files = await call.session.list_files()
    # A repository's history is thousands of files the model has no use for.
    found = sorted(p for p in files if _under(p, args.path) and not p.startswith(".git/"))
    if not found:
        if args.path == ".":
            return ToolOutcome("the workspace is empty")
        return _refused(f"no files under {args.path!r}")
    shown = found[: call.limits.max_list_entries]
    lines = [f"{path} ({files[path]} bytes)" for path in shown]
    if len(found) > len(shown):
        left = len(found) - len(shown)
        lines.append(f"…({left} more files not shown; list a folder to see them)")
    return ToolOutcome(f"{len(found)} files under {args.path}:\n" + "\n".join(lines))


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


async def _read_file(call: _Call, args: inputs.ReadFile) -> ToolOutcome:
    text = (await call.session.read_file(args.path)).decode(errors="replace")
    header = ""
    if args.start_line is not None or args.end_line is not None:
        lines = _lines(text)
        first, last = args.start_line or 1, min(args.end_line or len(lines), len(lines))
        if first > len(lines):
            return _refused(f"{args.path} has {len(lines)} lines; start_line {first} is past it")
        header = f"{args.path}: lines {first}–{last} of {len(lines)}\n"
        text = "".join(line + "\n" for line in lines[first - 1 : last])
    elif not text:
        return ToolOutcome(f"{args.path} is empty")
    cap = call.limits.max_read_chars
    if len(text) > cap:
        cut = f"\n…(cut: showing {cap} of {len(text)} characters; read a line range for more)"
        text = text[:cap] + cut
    return ToolOutcome(header + text)


async def _write_file(call: _Call, args: inputs.WriteFile) -> ToolOutcome:
    await call.session.write_files({args.path: args.content.encode()})
    return ToolOutcome(f"wrote {args.path} ({len(args.content)} characters)", changed=True)


def _occurrences(text: str, old: str) -> int:
    """Overlapping ones too: "aa" is ambiguous in "aaa"."""
    count, at = 0, text.find(old)
    while at != -1:
        count, at = count + 1, text.find(old, at + 1)
    return count


async def _edit_file(call: _Call, args: inputs.EditFile) -> ToolOutcome:
    try:
        text = (await call.session.read_file(args.path)).decode()
    except UnicodeDecodeError:
        return _refused(f"{args.path} is not UTF-8 text; replace it whole with write_file")
    count = _occurrences(text, args.old)
    if count != 1:
        times = "does not occur" if count == 0 else f"occurs {count} times"
        hint = "copy it exactly" if count == 0 else "add surrounding lines to make it unique"
        return _refused(f"edit_file refused: `old` {times} in {args.path}; {hint}")
    edited = text.replace(args.old, args.new, 1)
    if len(edited) > MAX_FILE_CHARS:
        return _refused(f"edit_file refused: {args.path} would pass {MAX_FILE_CHARS} characters")
    await call.session.write_files({args.path: edited.encode()})
    return ToolOutcome(f"edited {args.path}", changed=True)


async def _delete_file(call: _Call, args: inputs.DeleteFile) -> ToolOutcome:
    # Dependency folders are not listed, so what is inside them is deleted unchecked.
    if snapshotted(args.path):
        files = await call.session.list_files()
        gone = [p for p in files if _under(p, args.path)]
        if not gone:
            raise FileNotFoundError(args.path)
        what = args.path if gone == [args.path] else f"{args.path} ({len(gone)} files)"
    else:
        what = args.path
    await call.session.delete_files([args.path])
    return ToolOutcome(f"deleted {what}", changed=True)


async def _search_files(call: _Call, args: inputs.SearchFiles) -> ToolOutcome:
    skips = [f"--exclude-dir={name}" for name in SEARCH_SKIPS]
    argv = ["grep", "-rnIHE", *skips, "-e", args.pattern, "--", args.path]
    timeout = min(SEARCH_TIMEOUT, call.limits.command_timeout)
    result = await call.session.run(
        Command(argv=argv, timeout=timeout, output_limit=call.limits.output_limit)
    )
    lines = result.log.decode(errors="replace").splitlines()
    if result.exit_code == 2 and not result.truncated:
        problem = "; ".join(line for line in lines if line.startswith("grep:")) or "grep failed"
        return _refused(f"search_files failed: {problem}")
    if result.exit_code == 1 or not lines:
        return ToolOutcome(f"no matches for {args.pattern!r} under {args.path}")
    return ToolOutcome(_matches(lines, call.limits.max_search_lines, result.truncated))


def _matches(lines: list[str], cap: int, truncated: bool) -> str:
    shown = [line.removeprefix("./")[:MAX_MATCH_LINE_CHARS] for line in lines[:cap]]
    if truncated:
        shown.append("…(more matches not shown: the output was cut; narrow the search)")
    elif len(lines) > cap:
        shown.append(f"…({len(lines) - cap} more matching lines not shown; narrow the search)")
    return "\n".join(shown)


async def _run_command(call: _Call, args: inputs.RunCommand) -> ToolOutcome:
    limits = call.limits
    timeout = min(float(args.timeout_seconds), limits.command_timeout)
    command = Command(
        shell=args.command,
        env=limits.command_env,
        timeout=timeout,
        output_limit=limits.output_limit,
        network=False,
    )
    result = await call.session.run(command)
    log_ref = await call.store.put_bytes(result.log)
    if result.timed_out:
        status = f"timed out after {timeout:g} seconds and was stopped"
    else:
        status = f"exit code {result.exit_code}"
    if result.truncated:
        status += f"; its output passed {limits.output_limit} bytes, so the middle was dropped"
    text = result.log.decode(errors="replace") or "(no output)"
    if len(text) > limits.max_tail_chars:
        note = f"(last {limits.max_tail_chars} of {len(text)} characters of output)"
        text = f"{note}\n…{text[-limits.max_tail_chars :]}"
    return ToolOutcome(f"{status}\n{text}", changed=True, log_ref=log_ref)


Handler = Callable[[_Call, Any], Awaitable[ToolOutcome]]
_TOOLS: dict[str, tuple[type[BaseModel], Handler]] = {
    "list_files": (inputs.ListFiles, _list_files),
    "read_file": (inputs.ReadFile, _read_file),
    "search_files": (inputs.SearchFiles, _search_files),
    "write_file": (inputs.WriteFile, _write_file),
    "edit_file": (inputs.EditFile, _edit_file),
    "delete_file": (inputs.DeleteFile, _delete_file),
    "run_command": (inputs.RunCommand, _run_command),
}
