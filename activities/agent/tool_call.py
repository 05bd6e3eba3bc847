"""One tool call's limits, what it works with, and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.events import CommandLog
from activities.sandbox import SandboxSession
from cofounder.artifacts import ArtifactStore


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
class ToolContext:
    """What one tool call works with: the build's session, the owner's store, the limits."""

    session: SandboxSession
    store: ArtifactStore
    limits: ToolLimits
    # Streams run_command's output into the build's events; None: it runs unobserved.
    commands: CommandLog | None = None


def refused(message: str) -> ToolOutcome:
    """An error outcome: a mistake of the model's, told back to it."""
    return ToolOutcome(message, is_error=True)
