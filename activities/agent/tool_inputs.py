"""The coder's tools as the model sees them: one strict input model each, and their definitions.

Paths are relative POSIX paths inside the workspace (checked as in activities/llm_tools.py);
reading may look inside `.git`, changing may not.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from activities.llm_tools import relative_path

MAX_PATH_CHARS = 200  # for files the model writes: today's write_file limit
MAX_READ_PATH_CHARS = 1_000  # files a command made may have longer names
MAX_FILE_CHARS = 500_000
MAX_PATTERN_CHARS = 1_000
MAX_COMMAND_CHARS = 10_000
MAX_COMMAND_SECONDS = 600


def _text(value: str) -> str:
    # JSON may carry lone surrogates, which no file, argv or shell line can hold.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _inside(path: str) -> str:
    """A relative POSIX path inside the workspace, with no way out of it (reads may look in
    .git; writes are refused there by `_writable`)."""
    return _text(relative_path(path))


def _writable(path: str) -> str:
    if _inside(path).split("/")[0] == ".git":
        raise ValueError("must not change anything inside .git")
    return path


def _folder(path: str) -> str:
    """A folder to look in: "." for the whole workspace; a trailing slash is forgiven."""
    path = path.rstrip("/") or "."
    return path if path == "." else _inside(path)


Text = Annotated[str, AfterValidator(_text)]
ReadPath = Annotated[
    str, Field(min_length=1, max_length=MAX_READ_PATH_CHARS), AfterValidator(_inside)
]
WritePath = Annotated[
    str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_writable)
]
FolderPath = Annotated[
    str, Field(min_length=1, max_length=MAX_READ_PATH_CHARS), AfterValidator(_folder)
]


class ToolInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ListFiles(ToolInput):
    """list_files's input."""

    path: FolderPath = Field(default=".", description='A folder, or "." for the whole workspace.')


class ReadFile(ToolInput):
    """read_file's input."""

    path: ReadPath
    start_line: int | None = Field(default=None, ge=1, description="First line (1-based).")
    end_line: int | None = Field(default=None, ge=1, description="Last line, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start_line and self.end_line and self.end_line < self.start_line:
            raise ValueError("end_line must not be before start_line")
        return self


class WriteFile(ToolInput):
    """write_file's input."""

    path: WritePath
    content: Text = Field(max_length=MAX_FILE_CHARS, description="The file's full content.")


class EditFile(ToolInput):
    """edit_file's input."""

    path: WritePath
    old: Text = Field(
        min_length=1,
        max_length=MAX_FILE_CHARS,
        description="The exact text to replace; it must occur exactly once in the file.",
    )
    new: Text = Field(max_length=MAX_FILE_CHARS, description="The text to put in its place.")


class DeleteFile(ToolInput):
    """delete_file's input."""

    path: WritePath


class SearchFiles(ToolInput):
    """search_files's input."""

    pattern: Text = Field(
        min_length=1,
        max_length=MAX_PATTERN_CHARS,
        description="An extended regular expression (grep -E).",
    )
    path: FolderPath = Field(default=".", description='A folder or file, or "." for all.')


class RunCommand(ToolInput):
    """run_command's input."""

    command: Text = Field(
        min_length=1, max_length=MAX_COMMAND_CHARS, description="A shell line, run by /bin/sh."
    )
    timeout_seconds: int = Field(default=120, ge=1, le=MAX_COMMAND_SECONDS)


def _tool(name: str, description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": model.model_json_schema()}


# In the order the model is shown them: looking first, then changing, then running.
CODER_TOOLS: list[dict[str, Any]] = [
    _tool(
        "list_files",
        "List the workspace's files under a folder, with their sizes in bytes. .git, installed "
        "dependency folders (.deps, node_modules) and caches are left out.",
        ListFiles,
    ),
    _tool(
        "read_file",
        "Read a text file, whole or a range of lines (1-based, inclusive). Long files are cut; "
        "read them a range at a time.",
        ReadFile,
    ),
    _tool(
        "search_files",
        "Search file contents for a regular expression (grep -E), giving path:line:text for "
        "each matching line. .git and dependency folders are skipped.",
        SearchFiles,
    ),
    _tool(
        "write_file",
        "Create or replace one file with its full content; missing folders are made.",
        WriteFile,
    ),
    _tool(
        "edit_file",
        "Replace one exact piece of a file's text with another. `old` must occur exactly once: "
        "include enough surrounding lines to make it unique.",
        EditFile,
    ),
    _tool("delete_file", "Delete a file, or a folder with everything in it.", DeleteFile),
    _tool(
        "run_command",
        "Run a shell line in the workspace (no network) and get its exit code and the end of "
        "its output. Use it to run the tests, scripts and other tools.",
        RunCommand,
    ),
]
TOOL_NAMES: tuple[str, ...] = tuple(tool["name"] for tool in CODER_TOOLS)
