"""The coder's tools that run a command in the sandbox: search_files (grep) and run_command."""

from __future__ import annotations

from activities.agent import tool_inputs as inputs
from activities.agent.tool_call import ToolContext, ToolOutcome, refused
from activities.events import CommandLog
from activities.sandbox import Command

# What grep skips: history and installed dependencies, never the model's own code.
SEARCH_SKIPS = (".git", ".deps", "node_modules", "__pycache__")
# A match in a minified file can be one enormous line; the model needs only its start.
MAX_MATCH_LINE_CHARS = 500
SEARCH_TIMEOUT = 60.0


async def search_files(call: ToolContext, args: inputs.SearchFiles) -> ToolOutcome:
    """The lines matching a regular expression under a folder (grep)."""
    skips = [f"--exclude-dir={name}" for name in SEARCH_SKIPS]
    argv = ["grep", "-rnIHE", *skips, "-e", args.pattern, "--", args.path]
    timeout = min(SEARCH_TIMEOUT, call.limits.command_timeout)
    result = await call.session.run(
        Command(argv=argv, timeout=timeout, output_limit=call.limits.output_limit, purpose="tool")
    )
    lines = result.log.decode(errors="replace").splitlines()
    if result.exit_code == 2 and not result.truncated:
        problem = "; ".join(line for line in lines if line.startswith("grep:")) or "grep failed"
        return refused(f"search_files failed: {problem}")
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


async def run_command(call: ToolContext, args: inputs.RunCommand) -> ToolOutcome:
    """Run a shell command without network; its full log goes to the store."""
    limits = call.limits
    timeout = min(float(args.timeout_seconds), limits.command_timeout)
    command = Command(
        shell=args.command,
        env=limits.command_env,
        timeout=timeout,
        output_limit=limits.output_limit,
        network=False,
        purpose="tool",
    )
    commands = call.commands or CommandLog(None, "")
    result = await commands.run(call.session, command)
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
