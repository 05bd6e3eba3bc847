"""The plan's steps, one coder pass each: code → test → fix until green, step after step; the
cost kept per step; the debugger and reviewer reading the change as a diff."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.agent import conversation
from activities.diff import render_diff
from activities.llm import LlmActivities, make_anthropic_client
from activities.llm_tools import REPOSITORY_HEADING, render_tree
from cofounder.artifacts import ArtifactStore
from cofounder.db import LedgerEntry
from cofounder.offline_model import script
from cofounder.payloads import BuildStatus, ReviewRequest, Usage
from cofounder.settings import Settings
from tests.helpers import (
    GOAL,
    activity_summaries,
    env_for,
    inject_faults,
    insert_build,
    owned,
    start_build,
    turn_requests,
    wait_for_status,
)
from tests.processes import demo_git


async def test_each_step_is_coded_and_tested_until_green_with_its_cost(
    env: WorkflowEnvironment, settings: Settings, sessions, store: ArtifactStore, worker
) -> None:
    handle = await start_build(env.client, settings, sessions)
    view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    planned = [step["title"] for step in script.plan(GOAL)["steps"]]
    assert [step.title for step in view.steps] == planned
    # The first step failed its tests once and was fixed; the second passed at once.
    assert [(step.status, step.attempts) for step in view.steps] == [("done", 2), ("done", 1)]
    assert view.step is None

    # Cost per step: the coder's and debugger's calls, which the ledger also names.
    in_steps = view.cost_by_role["coder"] + view.cost_by_role["debugger"]
    assert sum((step.cost for step in view.steps), Usage()) == in_steps
    async with sessions() as session:
        rows = (
            await session.scalars(select(LedgerEntry).where(LedgerEntry.build_id == view.build_id))
        ).all()
    for number, step in enumerate(view.steps, start=1):
        assert sum(r.cost_micro_usd for r in rows if r.step == number) == step.cost.cost_micro_usd
    assert {r.role for r in rows if r.step is None} == {"architect", "reviewer"}

    history = await handle.fetch_history()
    turns = turn_requests(history)
    assert {turn.brief.step for turn in turns} == {1, 2}
    # Each step opens its own conversation; the fix goes on in the step's, with the news.
    openings = [turn for turn in turns if turn.conversation_ref is None]
    assert [turn.brief.step for turn in openings] == [1, 2]
    fix = next(turn for turn in turns if turn.brief.diagnosis_ref is not None)
    assert fix.follow_up and fix.conversation_ref is not None and fix.brief.step == 1
    messages = (await conversation.load(owned(store), fix.conversation_ref)).messages
    assert messages[-1]["role"] == "assistant"  # the first pass's close, then the fix's news
    summaries = activity_summaries(history)
    assert "step 1: test run 2 of 3" in summaries and "step 2: test run 1 of 3" in summaries

    last_turn = turns[-1]
    assert last_turn.brief.step == 2
    last = (await conversation.load(owned(store), last_turn.conversation_ref or "")).messages
    assert "step 2 of 2: Document usage in README.md" in last[0]["content"]
    readme = demo_git(settings, "show", f"{view.pull_request.branch}:README.md")
    assert readme.startswith("# slugkit")


def test_a_diff_shows_what_changed_and_only_that() -> None:
    base = {"big.txt": b"x\n" * 50_000, "a.py": b"one\ntwo\n", "gone.py": b"bye\n"}
    files = {"big.txt": base["big.txt"], "a.py": b"one\n2\n", "new.py": b"hi\n", "b.bin": b"\0"}
    diff = render_diff(base, files)
    assert "--- a/a.py\n+++ b/a.py\n" in diff and "-two\n+2\n" in diff
    assert "+++ b/new.py" in diff and "+hi\n" in diff
    assert "--- a/gone.py\n+++ /dev/null" in diff and "-bye\n" in diff
    assert "Binary file b.bin changed" in diff and "big.txt" not in diff
    assert render_diff(base, base) == "(no change from the base)"
    squeezed = render_diff({}, {"a.py": b"a\n" * 100, "b.py": b"b\n"}, limit=100)
    assert "+b\n" in squeezed and "not shown: a.py" in squeezed


async def test_the_reviewer_reads_the_change_however_large_the_repository(
    settings: Settings, store: ArtifactStore, sessions, offline_model: str
) -> None:
    owner = owned(store)
    big = {f"vendor/lib{i}.py": b"# unchanged\n" * 2_000 for i in range(20)}  # ~480 KB
    base_ref = await owner.put_tree(big)
    changed = {**big, **script.project_files(GOAL, fixed=True)}
    files = {
        path: text if isinstance(text, bytes) else text.encode() for path, text in changed.items()
    }
    build_id = await insert_build(sessions)
    request = ReviewRequest(
        build_id=build_id,
        goal=GOAL,
        plan_ref=await owner.put_json(script.plan(GOAL)),
        workspace_ref=await owner.put_tree(files),
        log_ref=await owner.put_bytes(b"6 passed\n"),
        base_ref=base_ref,
    )
    llm = LlmActivities(make_anthropic_client(settings), settings, store, sessions)
    review = await env_for(build_id, "review-1").run(llm.review, request)
    assert review.approved  # it saw the fixed slugify in the diff
    used = review.usage
    sent = used.input_tokens + used.cache_creation_input_tokens + used.cache_read_input_tokens
    assert sent < 10_000  # the 480 KB it did not change (~120,000 tokens) stayed out


async def test_the_api_shows_each_steps_cost_live_and_after_the_end(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions,
    worker,
    offline_model: str,
    http: httpx.AsyncClient,
) -> None:
    inject_faults(offline_model, {"delay": 2.0, "role": "reviewer"})
    handle = await start_build(env.client, settings, sessions)
    view = await wait_for_status(handle, BuildStatus.REVIEWING)
    live = (await http.get(f"/api/builds/{view.build_id}")).json()
    titles = [step["title"] for step in script.plan(GOAL)["steps"]]
    assert [(s["number"], s["title"], s["status"], s["attempts"]) for s in live["steps"]] == [
        (1, titles[0], "done", 2),
        (2, titles[1], "done", 1),
    ]
    costs = [step["cost"]["usd"] for step in live["steps"]]
    assert all(cost > 0 for cost in costs)

    await handle.result()
    ended = (await http.get(f"/api/builds/{view.build_id}")).json()
    assert ended["status"] == "succeeded"
    # The ledger's sums per step, as the live view counted them.
    assert [(s["number"], s["cost"]["usd"]) for s in ended["steps"]] == [
        (1, costs[0]),
        (2, costs[1]),
    ]


def test_the_architect_sees_the_repositorys_files_within_a_budget() -> None:
    sizes = {f"src/module_{i:05}.py": i for i in range(10_000)}
    shown = render_tree(("c0ffee" * 7, sizes)).splitlines()
    assert shown[0] == f"{REPOSITORY_HEADING} (main at c0ffeec0ffee, 10000 files):"
    assert shown[1] == "src/module_00000.py (0 bytes)" and len(shown) == 1 + 400 + 1
    assert shown[-1] == "… and 9600 more files"
    assert render_tree(None) == render_tree(("c0ffee", {})) != ""


async def test_a_long_conversation_stores_each_message_once_and_a_short_record(
    store: ArtifactStore, settings: Settings
) -> None:
    owner = owned(store)
    talk = conversation.Conversation(
        messages=[{"role": "user", "content": f"message {i}"} for i in range(200)]
    )
    ref = await conversation.save(owner, talk)
    loaded = await conversation.load(owner, ref)
    assert loaded.messages == talk.messages and len(loaded.stored) == 200
    record = await owner.get_json(ref)
    assert len(record["chunks"]) == 3 and len(record["messages"]) == 200 - 3 * conversation.CHUNK

    def files() -> set[str]:
        return {str(p) for p in settings.artifacts_dir.rglob("*") if p.is_file()}

    before = files()
    loaded.messages.append({"role": "assistant", "content": "one more"})
    again = await conversation.load(owner, await conversation.save(owner, loaded))
    assert again.messages == [*talk.messages, {"role": "assistant", "content": "one more"}]
    assert len(files() - before) == 2  # the new message and the new record, nothing else
    # A conversation stored whole, as before references, still reads.
    whole = await owner.put_json(talk.messages[:3])
    assert (await conversation.load(owner, whole)).messages == talk.messages[:3]
