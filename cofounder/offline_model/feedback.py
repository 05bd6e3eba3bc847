"""The scripted coder's answer to review feedback: it notes each piece of feedback in the README
(read it, write it back with a "Changes from review" line per item, run the tests, hand over).
A pure function of the conversation, like the rest of the offline model."""

from __future__ import annotations

import re
from typing import Any

from cofounder.offline_model import script

SECTION = "## Changes from review"
# A feedback item's header in the brief: "1. review_comment by @alice on f.py line 3:".
ITEM = re.compile(r"^\d+\. \w+ by @\S+.*:$")
QUOTE = "   > "


def requests(opening: str) -> list[str]:
    """The first line of each piece of feedback the brief quotes."""
    if script.FEEDBACK_HEADING not in opening:
        return []
    lines = opening.split(script.FEEDBACK_HEADING, 1)[1].splitlines()
    found = []
    for header, quoted in zip(lines, lines[1:], strict=False):
        if ITEM.match(header) and quoted.startswith(QUOTE):
            found.append(quoted[len(QUOTE) :].strip())
    return [line for line in found if line]


def noted(readme: str, asks: list[str]) -> str:
    """The README with a line for each request not noted yet."""
    text = readme if readme.endswith("\n") or not readme else readme + "\n"
    if SECTION not in text:
        text += f"\n{SECTION}\n\n"
    for ask in asks:
        line = f"- {ask}\n"
        if line not in text:
            text += line
    return text


def answer(turn: int, opening: str, read: str, pytest: str) -> list[tuple[str, dict[str, Any]]]:
    """Turn `turn`'s calls: `read` is what the README read answered (turn 1 only; empty when
    there is none)."""
    if turn == 0:
        return [("read_file", {"path": script.README})]
    if turn == 1:
        content = noted(read, requests(opening))
        return [("write_file", {"path": script.README, "content": content})]
    if turn == 2:
        return [("run_command", {"command": pytest, "timeout_seconds": 120})]
    return []
