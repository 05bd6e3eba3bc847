"""Log lines as production writes them (`configure_logging`'s JSON mode), captured for a test."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from cofounder.logging import configure_logging


class CapturedLogs:
    """What the process logged through the root handler: raw text, and the lines as dicts."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]


@contextmanager
def json_logs(level: int = logging.INFO) -> Iterator[CapturedLogs]:
    """Configure logging as the API and the worker do (JSON), into a buffer; restore after."""
    captured = CapturedLogs()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(json=True, level=level)
    root.handlers[0].setStream(captured.stream)  # type: ignore[attr-defined]
    try:
        yield captured
    finally:
        root.handlers, root.level = saved[0], saved[1]
        structlog.reset_defaults()
