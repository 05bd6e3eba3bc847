"""The scripted architect's memory: the decisions it records with their reasons, the
conventions it hears the founder state, and how its plan cites what the project remembers."""

from __future__ import annotations

import re
from typing import Any

# The recalled memories open with this (activities/memory.py).
MEMORY_HEADING = "What this project remembers"
DECISIONS = [
    {
        "decision": "Keep slugkit free of third-party dependencies.",
        "reason": "The standard library's re and unicodedata do the job, and a library with no "
        "dependencies is easier to install and audit.",
    },
    {
        "decision": "Test with pytest, run from the workspace root.",
        "reason": "One command runs every test the same way locally and in the sandbox.",
    },
]
# A clause of the goal that says how things are to be done.
_CONVENTION = re.compile(r"\b(we use|always|never|no new|do not|don't|must)\b", re.I)
_CLAUSE = re.compile(r"[.;!?,]|\band\b")
# A recalled decision or convention: "- decision (build 1a2b): text".
_RECALLED = re.compile(r"^- (decision|convention) \(([^)]+)\): (.+)$", re.M)


def conventions(goal: str) -> list[str]:
    """The goal's clauses that state a convention, as the founder said them."""
    clauses = (clause.strip() for clause in _CLAUSE.split(goal))
    return [clause for clause in clauses if _CONVENTION.search(clause)][:5]


def cite(request: str) -> str:
    """What the plan's summary says of the memory it was given: the first decision or
    convention recalled, and where it came from; nothing when none was."""
    if MEMORY_HEADING not in request:
        return ""
    found = _RECALLED.search(request.split(MEMORY_HEADING, 1)[1])
    if found is None:
        return ""
    kind, source, text = found.groups()
    return f" Keeps to the {kind} of {source}: {text.split(' Because:')[0]}"


def remembered(plan: dict[str, Any], goal: str, request: str) -> dict[str, Any]:
    """`plan` with its decisions, the goal's conventions, and its citation of memory."""
    return {
        **plan,
        "summary": plan["summary"] + cite(request),
        "decisions": DECISIONS,
        "conventions": conventions(goal),
    }
