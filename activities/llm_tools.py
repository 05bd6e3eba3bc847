"""What each Claude role is told, the tools it may use, and how its tool input is validated."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from anthropic.types import ToolUseBlock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# The coder's user message carries the debugger's diagnosis under this heading.
DIAGNOSIS_HEADING = "Diagnosis of the failing tests:"
# ... and the reviewer's findings under this one.
REVIEW_HEADING = "The reviewer sent the code back; address these findings:"
# A step of the plan the coder works on opens with this.
STEP_HEADING = "Your task now is step"
# Opens the review feedback an iteration answers (the offline model looks for it too).
FEEDBACK_HEADING = "Feedback on the pull request to answer now"
# The debugger and the reviewer read the change under this one.
DIFF_HEADING = "The change from the project's base (a unified diff):"
# The architect reads the repository's files (paths and sizes) under this one.
REPOSITORY_HEADING = "The repository the build starts from"
MAX_TREE_ENTRIES = 400
MAX_FILE_CHARS = 500_000
MAX_PROMPT_FILE_CHARS = 200_000
MAX_LOG_CHARS = 20_000

SYSTEM_PROMPTS = {
    "architect": "You are the architect of a senior technical co-founder team. Turn the founder's "
    "goal into a small, testable plan: a title, a summary, ordered steps (each with the files it "
    "expects to touch, and each leaving the project's tests passing: a step that adds code adds "
    "its tests), the files, the third-party dependencies, the command that runs the tests "
    "from the workspace root, and your estimate of the build's model cost in USD. "
    "Record the decisions you make with their reasons, and the conventions the founder states "
    "(how they want things done), so later builds keep to them. When the project's memory is "
    "given, keep to its decisions and conventions, and name in the summary the build each one "
    "you rely on came from. Answer only by calling submit_plan.",
    "coder": "You are the coder of a senior technical co-founder team. Implement the plan as a "
    "complete Python project whose tests run with `python -m pytest -q` from the workspace root. "
    "Write every file with write_file (path relative to the root, full content). When a "
    "diagnosis of failing tests is given, fix the code accordingly. Reply 'done' when finished.",
    "debugger": "You are the debugger of a senior technical co-founder team. Read the failing test "
    "log and the code, find the root cause and say how to fix it. Answer only by calling "
    "submit_diagnosis.",
    "reviewer": "You are the reviewer of a senior technical co-founder team. Review the code "
    "against the goal and plan as a careful senior engineer would. Approve only code you would "
    "merge. Answer only by calling submit_review.",
}


def relative_path(path: str) -> str:
    """A relative POSIX path inside the workspace, with no way out of it."""
    pure = PurePosixPath(path)
    if path.startswith("/") or "\\" in path or "\x00" in path or ":" in pure.parts[0]:
        raise ValueError("must be a relative POSIX path inside the workspace")
    if any(part in ("..", ".", "") for part in path.split("/")):
        raise ValueError("must not contain '..', '.' or empty segments")
    return path


def _check_path(path: str) -> str:
    if PurePosixPath(relative_path(path)).parts[0] == ".git":
        raise ValueError("must not write inside .git")
    return path


class FileWrite(BaseModel):
    """write_file's input."""

    model_config = ConfigDict(strict=True)

    path: str = Field(min_length=1, max_length=200)
    content: str = Field(max_length=MAX_FILE_CHARS)

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        return _check_path(path)


class PlanStep(BaseModel):
    """One step of a plan: what to do, and the files it expects to touch."""

    model_config = ConfigDict(strict=True, extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2_000)
    files: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: list[str]) -> list[str]:
        return [_check_path(path) for path in files]


class PlanDecision(BaseModel):
    """A choice the plan makes, and why: what later builds of the project should keep to."""

    model_config = ConfigDict(strict=True, extra="forbid")

    decision: str = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=1_000)


class PlanOutput(BaseModel):
    """submit_plan's input: the architect's plan."""

    model_config = ConfigDict(strict=True)

    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=10_000)
    steps: list[PlanStep] = Field(min_length=1, max_length=50)
    files: list[str] = Field(min_length=1, max_length=200)
    # Third-party packages the project needs (installed by the sandbox's install step).
    dependencies: list[str] = Field(default_factory=list, max_length=100)
    # How the tests run from the workspace root; None: the project's own (pytest, npm test).
    test_command: str | None = Field(default=None, min_length=1, max_length=500)
    estimated_cost_usd: float | None = Field(default=None, ge=0, le=10_000)
    decisions: list[PlanDecision] = Field(default_factory=list, max_length=20)
    # How the founder wants things done, as they said it ("we use pytest").
    conventions: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: list[str]) -> list[str]:
        return [_check_path(path) for path in files]


class DiagnosisOutput(BaseModel):
    """submit_diagnosis's input."""

    model_config = ConfigDict(strict=True)

    summary: str = Field(min_length=1, max_length=10_000)
    fix: str = Field(min_length=1, max_length=50_000)


class ReviewOutput(BaseModel):
    """submit_review's input."""

    model_config = ConfigDict(strict=True)

    approved: bool
    summary: str = Field(min_length=1, max_length=10_000)
    comments: list[str] = Field(default_factory=list, max_length=100)


def _tool(name: str, description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": model.model_json_schema()}


TOOLS = {
    "architect": _tool("submit_plan", "Submit the build plan.", PlanOutput),
    "coder": _tool("write_file", "Create or replace one file in the workspace.", FileWrite),
    "debugger": _tool("submit_diagnosis", "Submit the diagnosis of the failure.", DiagnosisOutput),
    "reviewer": _tool("submit_review", "Submit the code review.", ReviewOutput),
}


def describe_errors(err: ValidationError) -> str:
    """A short, model-readable list of what was wrong with a tool input."""
    parts = []
    for item in err.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "input"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def render_plan(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True)


def render_tree(base: tuple[str, dict[str, int]] | None, limit: int = MAX_TREE_ENTRIES) -> str:
    """The repository a build starts from as the architect sees it: its files and their sizes,
    at most `limit` of them, so the prompt stays small however large the repository."""
    if base is None or not base[1]:
        return "The repository is empty: the build starts the project."
    commit, sizes = base
    lines = [f"{path} ({size} bytes)" for path, size in sorted(sizes.items())[:limit]]
    if len(sizes) > limit:
        lines.append(f"… and {len(sizes) - limit} more files")
    return f"{REPOSITORY_HEADING} (main at {commit[:12]}, {len(sizes)} files):\n" + "\n".join(lines)


def render_files(files: dict[str, bytes]) -> str:
    """Workspace files as text for a prompt, within a size budget."""
    if not files:
        return "(the workspace is empty)"
    parts, budget = [], MAX_PROMPT_FILE_CHARS
    for path, data in sorted(files.items()):
        text = data.decode("utf-8", errors="replace")
        if len(text) > budget:
            parts.append(f"### {path}\n(omitted: {len(text)} characters, over the prompt budget)")
            continue
        budget -= len(text)
        parts.append(f"### {path}\n```\n{text}\n```")
    return "\n\n".join(parts)


def tail(text: str, limit: int = MAX_LOG_CHARS) -> str:
    return text if len(text) <= limit else "…(earlier output cut)\n" + text[-limit:]


def shorten(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_file(call: ToolUseBlock, files: dict[str, bytes]) -> dict[str, Any]:
    """Run one write_file call against the in-memory workspace; bad input is the model's to fix."""
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id}
    if call.name != "write_file":
        return {**result, "is_error": True, "content": f"unknown tool {call.name!r}"}
    try:
        write = FileWrite.model_validate(call.input)
    except ValidationError as err:
        problem = f"invalid write_file input: {describe_errors(err)}"
        return {**result, "is_error": True, "content": problem}
    files[write.path] = write.content.encode()
    return {**result, "content": f"wrote {write.path} ({len(write.content)} characters)"}
