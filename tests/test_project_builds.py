"""A project's builds one after another, end to end (real dev server, worker, offline model,
bubblewrap and git): the first is merged, and the second starts from the merged code."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.agent import conversation
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import BuildStatus, BuildView, SandboxRef, TurnRequest
from cofounder.settings import Settings
from tests.helpers import owned, start_build
from tests.remotes import head, tree_of

FEATURE_GOAL = "Let slugify cut long slugs to a maximum length"


async def scheduled(handle: WorkflowHandle[Any, BuildView], activity: str) -> list[Any]:
    """The decoded inputs of every `activity` the build scheduled, in order."""
    return [
        json.loads(attrs.input.payloads[0].data)
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and (attrs := e.activity_task_scheduled_event_attributes).activity_type.name == activity
    ]


async def first_look(handle: WorkflowHandle[Any, BuildView], store: ArtifactStore) -> str:
    """What the coder's first list_files answered: the conversation its second turn reads."""
    second_turn = TurnRequest.model_validate((await scheduled(handle, "model_turn"))[1])
    assert second_turn.conversation_ref is not None
    messages = (await conversation.load(store, second_turn.conversation_ref)).messages
    [result] = messages[2]["content"]
    return str(result["content"])


async def test_after_a_merge_the_next_build_adds_a_feature_to_the_merged_code(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    store: ArtifactStore,
    worker: None,
    http: httpx.AsyncClient,
) -> None:
    first = await (await start_build(env.client, settings, sessions)).result()
    assert first.status == BuildStatus.SUCCEEDED and first.attempt == 3
    merged = await http.post(f"/api/builds/{first.build_id}/pull-request/merge")
    assert merged.status_code == 200, merged.text
    remote = settings.git_remote("local", "demo")
    merged_main = head(remote)
    assert merged.json()["merge_commit_sha"] == merged_main  # a fast-forward

    handle = await start_build(env.client, settings, sessions, goal=FEATURE_GOAL)
    second = await handle.result()

    assert second.status == BuildStatus.SUCCEEDED
    # The feature passed its first test run, and so did the README's line.
    assert [step.attempts for step in second.steps] == [1, 1]
    # The build started from the merged code: pinned to it, and the coder's first look saw it.
    [tools, *_] = await scheduled(handle, "run_tools")
    assert SandboxRef.model_validate(tools["sandbox"]).base_commit == merged_main
    assert "slugkit/__init__.py (" in await first_look(handle, owned(store))

    # The architect was shown the merged code (its files and sizes), and planned to extend it.
    plan = (await http.get(f"/api/builds/{second.build_id}/plan")).json()
    assert (
        plan["steps"][0]["title"]
        == "Add max_length to slugify in slugkit/__init__.py, with its tests"
    )
    first_plan = (await http.get(f"/api/builds/{first.build_id}/plan")).json()
    assert first_plan["steps"][0]["title"].startswith("Create the slugkit package")

    # Its pull request, against main, is the feature alone.
    pr = (await http.get(f"/api/builds/{second.build_id}/pull-request")).json()
    changed = [line.split(" b/")[-1] for line in pr["diff"].splitlines() if line.startswith("diff")]
    assert changed == ["README.md", "slugkit/__init__.py", "tests/test_max_length.py"]
    assert '-def slugify(text: str, separator: str = "-") -> str:' in pr["diff"]
    assert "max_length: int | None = None" in pr["diff"]
    branch = tree_of(remote, pr["branch"])
    assert set(branch) == set(tree_of(remote, "main")) | {"tests/test_max_length.py"}
