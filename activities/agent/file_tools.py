"""The coder's file tools: list, read, write, edit and delete files in the workspace."""

from __future__ import annotations

from activities.agent import tool_inputs as inputs
from activities.agent.tool_call import ToolContext, ToolOutcome, refused
from activities.agent.tool_inputs import MAX_FILE_CHARS
from activities.sandbox import snapshotted


def _under(path: str, folder: str) -> bool:
    return folder == "." or path == folder or path.startswith(folder + "/")


async def list_files(call: ToolContext, args: inputs.ListFiles) -> ToolOutcome:
    """The files under a folder, with their sizes."""
    files = await call.session.list_files()
    # A repository's history is thousands of files the model has no use for.
    found = sorted(p for p in files if _under(p, args.path) and not p.startswith(".git/"))
    if not found:
        if args.path == ".":
            return ToolOutcome("the workspace is empty")
        return refused(f"no files under {args.path!r}")
    shown = found[: call.limits.max_list_entries]
    lines = [f"{path} ({files[path]} bytes)" for path in shown]
    if len(found) > len(shown):
        left = len(found) - len(shown)
        lines.append(f"…({left} more files not shown; list a folder to see them)")
    return ToolOutcome(f"{len(found)} files under {args.path}:\n" + "\n".join(lines))


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


async def read_file(call: ToolContext, args: inputs.ReadFile) -> ToolOutcome:
    """A file's text, whole or a range of its lines."""
    text = (await call.session.read_file(args.path)).decode(errors="replace")
    header = ""
    if args.start_line is not None or args.end_line is not None:
        lines = _lines(text)
        first, last = args.start_line or 1, min(args.end_line or len(lines), len(lines))
        if first > len(lines):
            return refused(f"{args.path} has {len(lines)} lines; start_line {first} is past it")
        header = f"{args.path}: lines {first}–{last} of {len(lines)}\n"
        text = "".join(line + "\n" for line in lines[first - 1 : last])
    elif not text:
        return ToolOutcome(f"{args.path} is empty")
    cap = call.limits.max_read_chars
    if len(text) > cap:
        cut = f"\n…(cut: showing {cap} of {len(text)} characters; read a line range for more)"
        text = text[:cap] + cut
    return ToolOutcome(header + text)


async def write_file(call: ToolContext, args: inputs.WriteFile) -> ToolOutcome:
    """Write a file whole."""
    await call.session.write_files({args.path: args.content.encode()})
    return ToolOutcome(f"wrote {args.path} ({len(args.content)} characters)", changed=True)


def _occurrences(text: str, old: str) -> int:
    """Overlapping ones too: "aa" is ambiguous in "aaa"."""
    count, at = 0, text.find(old)
    while at != -1:
        count, at = count + 1, text.find(old, at + 1)
    return count


async def edit_file(call: ToolContext, args: inputs.EditFile) -> ToolOutcome:
    """Replace the one occurrence of `old` in a file with `new`."""
    try:
        text = (await call.session.read_file(args.path)).decode()
    except UnicodeDecodeError:
        return refused(f"{args.path} is not UTF-8 text; replace it whole with write_file")
    count = _occurrences(text, args.old)
    if count != 1:
        times = "does not occur" if count == 0 else f"occurs {count} times"
        hint = "copy it exactly" if count == 0 else "add surrounding lines to make it unique"
        return refused(f"edit_file refused: `old` {times} in {args.path}; {hint}")
    edited = text.replace(args.old, args.new, 1)
    if len(edited) > MAX_FILE_CHARS:
        return refused(f"edit_file refused: {args.path} would pass {MAX_FILE_CHARS} characters")
    await call.session.write_files({args.path: edited.encode()})
    return ToolOutcome(f"edited {args.path}", changed=True)


async def delete_file(call: ToolContext, args: inputs.DeleteFile) -> ToolOutcome:
    """Delete a file or a folder."""
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
