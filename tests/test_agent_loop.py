"""The coder's loop in the workflow: a turn per activity, tools run in the sandbox, answers
paid once, the loop guard, the turn bound, and bad tool calls answered rather than raised."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.agent import conversation
from activities.agent.turns import AgentActivities
from activities.llm import make_anthropic_client
from activities.sandbox import SessionSpec
from activities.sandbox.local import LocalRuntime
from cofounder.artifacts import ArtifactStore
from cofounder.db import LedgerEntry
from cofounder.payloads import Brief, BuildStatus, SandboxRef, ToolsRequest, TurnRequest
from cofounder.replay import replay_runs
from cofounder.settings import Settings
from tests.helpers import (
    activity_types,
    count,
    env_for,
    inject_faults,
    insert_build,
    model_stats,
    owned,
    progress,
    record,
    side_effects,
    start_build,
    turn_requests,
)
from tests.processes import demo_git
from workflows.guard import REPEATS_NOTED, LoopGuard


def test_the_guard_notes_the_third_repeat_and_stops_the_fourth() -> None:
    guard = LoopGuard()
    assert guard.observe(["a"]) is None and guard.observe(["b"]) is None
    assert guard.observe(["b"]) is None
    note = guard.observe(["b"])
    assert note is not None and f"last {REPEATS_NOTED} turns" in note and not guard.stuck
    assert guard.observe(["b"]) is None and guard.stuck
    assert guard.observe(["c"]) is None and not guard.stuck  # something new: a fresh start


async def test_a_coder_repeating_itself_is_told_then_stopped(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, *[{"stuck": True, "role": "coder"}] * 6)
    handle = await start_build(env.client, settings, sessions)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "repeated the same tool calls with the same results 4 times" in str(failure.value.cause)
    history = await handle.fetch_history()
    notes = [request.note for request in turn_requests(history)]
    assert len(notes) == 4 and notes[:3] == [None, None, None]
    assert notes[3] is not None and "try a different approach" in notes[3]
    assert "run_tests" not in activity_types(history)  # nothing spent past the guard
    assert await LocalRuntime(settings).list_sessions() == []


async def test_the_coder_has_a_bounded_number_of_turns(
    env: WorkflowEnvironment, settings: Settings, sessions, worker
) -> None:
    handle = await start_build(env.client, settings, sessions, max_turns=2)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "the coder did not finish within 2 turns" in str(failure.value.cause)
    assert activity_types(await handle.fetch_history()).count("model_turn") == 2


async def test_a_bad_tool_call_is_answered_and_the_build_goes_on(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"malformed": True, "role": "coder"})
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED


async def test_a_retried_turn_reuses_its_paid_answer(
    settings: Settings, store: ArtifactStore, sessions, offline_model: str
) -> None:
    build_id = await insert_build(sessions)
    plan_ref = await store.put_json({"title": "t", "summary": "s", "steps": ["x"], "files": []})
    agent = AgentActivities(
        make_anthropic_client(settings), settings, store, sessions, LocalRuntime(settings)
    )
    request = TurnRequest(build_id=build_id, brief=Brief(goal="a slug library", plan_ref=plan_ref))
    first = await env_for(build_id, "turn-1").run(agent.model_turn, request)
    again = await env_for(build_id, "turn-1").run(agent.model_turn, request)  # a retry
    assert again == first and [call.name for call in first.tool_calls] == ["list_files"]
    assert model_stats(offline_model)["served"] == 1
    assert await count(sessions, LedgerEntry, build_id=build_id) == 1

    messages = (await conversation.load(owned(store), first.conversation_ref)).messages
    assert [message["role"] for message in messages] == ["user", "assistant"]
    assert messages[0]["content"].startswith("Goal: a slug library")

    # The answer is stored once, as the artifact the result names; the journal only points
    # to it, and the conversation is a list of references to its messages.
    [entry] = list(settings.artifacts_dir.rglob("calls/*/*.json"))
    assert json.loads(entry.read_text()) == {"response_ref": first.response_ref, "rejected": False}
    response = await owned(store).get_json(first.response_ref)
    assert response["content"][1]["name"] == "list_files"
    stored = [path.read_bytes() for path in settings.artifacts_dir.rglob("*") if path.is_file()]
    assert sum(b'"name":"list_files"' in data for data in stored) == 2  # answer and message


async def test_the_reviewer_sends_the_code_back_once_and_the_coder_answers(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    inject_faults(offline_model, {"picky": True, "role": "reviewer"})
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    history = await handle.fetch_history()
    kinds = activity_types(history)
    # Two plan steps (the first tested twice), then the review round's step.
    assert kinds.count("review") == 2 and kinds.count("run_tests") == 4
    # The last coding pass started from the reviewer's findings, and answered them.
    last_pass = [r for r in turn_requests(history) if r.brief.review_ref is not None]
    assert len(last_pass) == 4 and last_pass[0].conversation_ref is None
    tests = demo_git(settings, "show", f"{view.pull_request.branch}:tests/test_slugify.py")
    assert "def test_digits_are_kept" in tests
    await record(handle, "reviewed_build")


async def test_a_retried_tool_run_does_not_do_its_calls_twice(
    settings: Settings, store: ArtifactStore, sessions
) -> None:
    runtime = LocalRuntime(settings)
    session = await runtime.open(SessionSpec("b-once", "local", "demo"))
    await session.write_files({"notes.txt": b"one\n"})
    append = {"path": "notes.txt", "old": "one\n", "new": "one\ntwo\n"}  # applies again if rerun
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "edit_file", "input": append}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    owner = owned(store)
    request = ToolsRequest(
        build_id="b-once",
        project="demo",
        sandbox=SandboxRef(session_id=session.session_id, runtime="local"),
        response_ref=await owner.put_json(response),
        conversation_ref=await owner.put_json([{"role": "user", "content": "go"}]),
    )
    agent = AgentActivities(make_anthropic_client(settings), settings, store, sessions, runtime)
    first = await env_for("b-once", "tools-1").run(agent.run_tools, request)
    again = await env_for("b-once", "tools-1").run(agent.run_tools, request)  # a retry
    assert again.outcomes == first.outcomes and not first.outcomes[0].is_error
    assert await session.read_file("notes.txt") == b"one\ntwo\n"  # edited once, not twice
    await env_for("b-once", "tools-2").run(agent.run_tools, request)  # another turn: it runs
    assert await session.read_file("notes.txt") == b"one\ntwo\ntwo\n"


async def test_a_long_build_continues_as_new_and_loses_nothing(
    env: WorkflowEnvironment, settings: Settings, sessions, worker, offline_model: str
) -> None:
    # A tiny threshold: the build goes on in a new run between nearly every two coder turns.
    handle = await start_build(env.client, settings, sessions, continue_after_events=40)
    view = await handle.result()  # followed across every run
    assert view.status == BuildStatus.SUCCEEDED
    assert [(step.status, step.attempts) for step in view.steps] == [("done", 2), ("done", 1)]
    runs = [run async for run in env.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) >= 3
    # Nothing was lost or done twice: the story, the cost and the side effects of one build.
    assert [status for status, _ in await progress(sessions, view.build_id)] == [
        "planning", "coding", "testing", "debugging", "coding", "testing", "coding", "testing",
        "reviewing", "publishing", "succeeded",
    ]  # fmt: skip
    effects = await side_effects(sessions, view.build_id)
    assert effects == {"pull_requests": 1, "ledger_rows": model_stats(offline_model)["served"]}
    assert view.cost.calls == effects["ledger_rows"]
    assert await LocalRuntime(settings).list_sessions() == []  # one sandbox, closed at the end
    # Every run replays, the chain as a whole too.
    assert await replay_runs(env.client, handle.id) == len(runs)
    for run in runs:
        history = await env.client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        assert len(history.events) < 200  # a single-run demo build takes about 200
    # The last run picked up from a Resume: kept, so the suite replays a continued run too.
    await record(env.client.get_workflow_handle(handle.id), "continued_build")
