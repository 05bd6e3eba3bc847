"""The change a build made, as a unified diff of two workspace snapshots, for the prompts that
judge it (the debugger's, the reviewer's): they stay small however large the repository."""

from __future__ import annotations

import difflib

# The diff a prompt carries; files past it are named, not shown.
MAX_DIFF_CHARS = 60_000


def render_diff(
    base: dict[str, bytes], files: dict[str, bytes], limit: int = MAX_DIFF_CHARS
) -> str:
    """What changed from `base` to `files`, file by file, within `limit` characters."""
    changed = sorted(
        path for path in base.keys() | files.keys() if base.get(path) != files.get(path)
    )
    if not changed:
        return "(no change from the base)"
    parts, left, omitted = [], limit, []
    for path in changed:
        part = _file_diff(path, base.get(path), files.get(path))
        if len(part) > left:
            omitted.append(path)
            continue
        left -= len(part)
        parts.append(part)
    if omitted:
        parts.append(f"(over the prompt budget, not shown: {', '.join(omitted)})")
    return "\n".join(parts)


def _file_diff(path: str, before: bytes | None, after: bytes | None) -> str:
    old, new = _text(before), _text(after)
    if old is None or new is None:
        return f"Binary file {path} changed\n"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}" if before is not None else "/dev/null",
        tofile=f"b/{path}" if after is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _text(data: bytes | None) -> str | None:
    """The file as text ("" when absent); None when it is binary."""
    if data is None:
        return ""
    if b"\x00" in data:
        return None
    return data.decode("utf-8", errors="replace")
