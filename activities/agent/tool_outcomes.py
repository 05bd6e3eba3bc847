"""A tool call's outcome kept for a retried tool run, and its signature for the loop guard."""

from __future__ import annotations

import hashlib
import json

from anthropic.types import ToolUseBlock
from temporalio import activity

from activities.agent.tools import ToolOutcome
from cofounder.artifacts import ArtifactNotFound, ArtifactStore


def outcome_key(call: ToolUseBlock) -> str:
    """Where a tool call's outcome is kept for this activity execution: a retry of the tool run
    (its worker died) reuses what the calls already done answered instead of doing them again
    (an edit applied twice, a command run twice), so only a call cut off mid-way repeats."""
    info = activity.info()
    identity = [info.workflow_id, info.workflow_run_id, info.activity_id, call.id]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return f"tools/{digest[:2]}/{digest}.json"


async def recorded_outcome(store: ArtifactStore, key: str) -> ToolOutcome | None:
    """The outcome an earlier try of this tool run kept under `key`; None if there is none."""
    try:
        return ToolOutcome(**json.loads(await store.blobs.read(key)))
    except ArtifactNotFound:
        return None


def signature(call: ToolUseBlock, content: str, is_error: bool) -> str:
    """The same call answered the same way always has the same signature."""
    data = json.dumps([call.name, call.input, content, is_error], sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]
