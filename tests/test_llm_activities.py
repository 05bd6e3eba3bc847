"""LLM activities through the real anthropic SDK, over HTTP, against the offline model."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import pytest
import pytest_asyncio
from anthropic.types import ToolUseBlock
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

import activities.journal
import activities.llm
from activities.llm import LlmActivities, make_anthropic_client
from activities.llm_tools import write_file
from cofounder.artifacts import ArtifactStore
from cofounder.db import LedgerEntry
from cofounder.offline_model import script
from cofounder.payloads import (
    CodeRequest,
    DebugRequest,
    PlanRequest,
    PlanResult,
    ReviewRequest,
    Usage,
)
from cofounder.settings import Settings
from tests.conftest import free_port
from tests.helpers import env_for, inject_faults, insert_build, model_stats, owned

GOAL = "turn blog post titles into URL slugs"
SECRET = "sk-ant-test-secret-0123456789"

Sessions = async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture
async def build_id(sessions: Sessions) -> str:
    """A project and build row: ledger rows reference the build."""
    return await insert_build(sessions, goal=GOAL)


@pytest.fixture
def llm(settings: Settings, store: ArtifactStore, sessions: Sessions) -> LlmActivities:
    return LlmActivities(make_anthropic_client(settings), settings, store, sessions)


async def ledger(sessions: Sessions, build_id: str) -> list[LedgerEntry]:
    async with sessions() as session:
        rows = await session.scalars(select(LedgerEntry).where(LedgerEntry.build_id == build_id))
        return list(rows)


async def plan(llm: LlmActivities, build_id: str, activity_id: str = "plan") -> PlanResult:
    request = PlanRequest(build_id=build_id, project="demo", goal=GOAL)
    result: PlanResult = await env_for(build_id, activity_id).run(llm.plan, request)
    return result


async def run_pytest(store: ArtifactStore, workspace_ref: str, where: Path) -> tuple[int, str]:
    """Materialise a workspace and run its tests the way the sandbox does."""
    for path, data in (await store.get_tree(workspace_ref)).items():
        (where / path).parent.mkdir(parents=True, exist_ok=True)
        (where / path).write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


async def test_plan_stores_the_plan_and_bills_one_call(
    llm: LlmActivities, store: ArtifactStore, sessions: Sessions, build_id: str, settings: Settings
) -> None:
    result = await plan(llm, build_id)

    assert GOAL in result.title and len(result.summary) <= 500
    assert result.files == script.FILES
    assert (await owned(store).get_json(result.plan_ref))["steps"]
    usage = result.usage
    assert usage.calls == 1 and usage.cache_creation_input_tokens > 0
    price = settings.model_prices[settings.model_for("architect")]
    expected = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
    )
    assert usage.cost_micro_usd == round(expected) > 0
    (row,) = await ledger(sessions, build_id)
    assert (row.role, row.model, row.cost_micro_usd) == (
        "architect",
        settings.model_architect,
        round(expected),
    )
    assert model_stats(settings.model_base_url)["served"] == 1


async def test_first_attempt_fails_its_tests_and_the_diagnosed_fix_passes(
    llm: LlmActivities, store: ArtifactStore, sessions: Sessions, build_id: str, tmp_path: Path
) -> None:
    planned = await plan(llm, build_id)
    code = CodeRequest(build_id=build_id, goal=GOAL, plan_ref=planned.plan_ref)
    first = await env_for(build_id, "code-1").run(llm.write_code, code)
    assert first.files == sorted(script.FILES)
    exit_code, log = await run_pytest(owned(store), first.workspace_ref, tmp_path / "first")
    assert exit_code == 1 and "1 failed, 5 passed" in log

    log_ref = await store.put_bytes(log.encode())
    request = DebugRequest(
        build_id=build_id,
        goal=GOAL,
        plan_ref=planned.plan_ref,
        workspace_ref=first.workspace_ref,
        log_ref=log_ref,
    )
    diagnosis = await env_for(build_id, "debug-1").run(llm.debug, request)
    assert "not collapsed" in diagnosis.summary
    assert (await owned(store).get_json(diagnosis.diagnosis_ref))["fix"]

    fix = code.model_copy(
        update={"workspace_ref": first.workspace_ref, "diagnosis_ref": diagnosis.diagnosis_ref}
    )
    second = await env_for(build_id, "code-2").run(llm.write_code, fix)
    exit_code, log = await run_pytest(owned(store), second.workspace_ref, tmp_path / "second")
    assert exit_code == 0 and "6 passed" in log

    review_request = ReviewRequest(**request.model_dump() | {"workspace_ref": second.workspace_ref})
    review = await env_for(build_id, "review").run(llm.review, review_request)
    assert review.approved and (await owned(store).get_json(review.review_ref))["comments"]

    # One ledger row per served call (plan 1, code 2, debug 1, code 2, review 1), and the
    # activities' usage adds up to the ledger.
    rows = await ledger(sessions, build_id)
    total = sum((r.usage for r in (planned, first, diagnosis, second, review)), start=Usage())
    assert len(rows) == total.calls == model_stats(llm.settings.model_base_url)["served"] == 7
    assert sum(r.cost_micro_usd for r in rows) == total.cost_micro_usd
    assert total.cache_read_input_tokens > 0  # the coder's second turn reads the cached prompt


async def test_a_retried_activity_reuses_its_journal(
    llm: LlmActivities, sessions: Sessions, build_id: str, offline_model: str
) -> None:
    planned = await plan(llm, build_id)
    code = CodeRequest(build_id=build_id, goal=GOAL, plan_ref=planned.plan_ref)
    first = await env_for(build_id, "code-1").run(llm.write_code, code)
    served = model_stats(offline_model)["requests"]
    assert served == 3

    again = await env_for(build_id, "code-1").run(llm.write_code, code)  # same info: a retry
    assert again == first
    assert model_stats(offline_model)["requests"] == served
    assert len(await ledger(sessions, build_id)) == served

    await env_for(build_id, "code-2").run(llm.write_code, code)  # another activity: new calls
    assert model_stats(offline_model)["requests"] == served + 2
    assert len(await ledger(sessions, build_id)) == served + 2


async def test_crash_after_the_call_is_billed_once_on_retry_without_calling_again(
    llm: LlmActivities,
    sessions: Sessions,
    build_id: str,
    offline_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def database_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(activities.journal, "record_call", database_down)
    with pytest.raises(ConnectionError):
        await plan(llm, build_id)
    assert model_stats(offline_model)["served"] == 1 and await ledger(sessions, build_id) == []

    monkeypatch.undo()
    result = await plan(llm, build_id)  # the retry: answered from the journal, then billed
    assert model_stats(offline_model)["requests"] == 1
    (row,) = await ledger(sessions, build_id)
    assert row.cost_micro_usd == result.usage.cost_micro_usd > 0


@pytest.mark.parametrize(
    ("fault", "type_name", "non_retryable", "delay"),
    [
        ({"status": 429, "retry_after": 2}, "RateLimitError", False, timedelta(seconds=2)),
        ({"status": 529}, "OverloadedError", False, None),
        ({"status": 500}, "InternalServerError", False, None),
        ({"status": 401}, "AuthenticationError", True, None),
        ({"status": 400}, "BadRequestError", True, None),
    ],
)
async def test_api_errors_become_application_errors(
    settings: Settings,
    store: ArtifactStore,
    sessions: Sessions,
    build_id: str,
    offline_model: str,
    fault: dict[str, Any],
    type_name: str,
    non_retryable: bool,
    delay: timedelta | None,
) -> None:
    keyed = settings.model_copy(update={"anthropic_api_key": SecretStr(SECRET)})
    llm = LlmActivities(make_anthropic_client(keyed), keyed, store, sessions)
    inject_faults(offline_model, fault)
    with pytest.raises(ApplicationError) as raised:
        await plan(llm, build_id)
    error = raised.value
    assert (error.type, error.non_retryable, error.next_retry_delay) == (
        type_name,
        non_retryable,
        delay,
    )
    assert f"({fault['status']})" in error.message and SECRET not in error.message
    if fault["status"] == 401:
        assert error.message == "the model API rejected the API key (401)"
    assert await ledger(sessions, build_id) == []


async def test_slow_and_unreachable_model_are_retryable(
    settings: Settings, store: ArtifactStore, sessions: Sessions, build_id: str, offline_model: str
) -> None:
    impatient = settings.model_copy(update={"llm_timeout_seconds": 0.2})
    llm = LlmActivities(make_anthropic_client(impatient), impatient, store, sessions)
    inject_faults(offline_model, {"delay": 0.5})
    with pytest.raises(ApplicationError) as timed_out:
        await plan(llm, build_id)
    assert (timed_out.value.type, timed_out.value.non_retryable) == ("APITimeoutError", False)

    nowhere = settings.model_copy(update={"anthropic_base_url": f"http://127.0.0.1:{free_port()}"})
    llm = LlmActivities(make_anthropic_client(nowhere), nowhere, store, sessions)
    with pytest.raises(ApplicationError) as unreachable:
        await plan(llm, build_id)
    assert (unreachable.value.type, unreachable.value.non_retryable) == (
        "APIConnectionError",
        False,
    )
    assert await ledger(sessions, build_id) == []


async def test_malformed_write_is_answered_with_an_error_and_the_coder_recovers(
    llm: LlmActivities, store: ArtifactStore, build_id: str, offline_model: str
) -> None:
    planned = await plan(llm, build_id)
    inject_faults(offline_model, {"malformed": True, "role": "coder"})
    code = CodeRequest(build_id=build_id, goal=GOAL, plan_ref=planned.plan_ref)
    result = await env_for(build_id, "code").run(llm.write_code, code)
    # The scripted coder rewrites its files only after a tool_result with is_error: 3 turns.
    assert model_stats(offline_model)["by_role"]["coder"] == {"requests": 3, "served": 3}
    assert result.files == sorted(script.FILES)
    assert not any(".." in path for path in await owned(store).get_tree(result.workspace_ref))


async def test_invalid_plan_is_retryable_and_the_retry_asks_again(
    llm: LlmActivities, sessions: Sessions, build_id: str, offline_model: str
) -> None:
    inject_faults(offline_model, {"malformed": True})
    with pytest.raises(ApplicationError) as raised:
        await plan(llm, build_id)
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidModelOutput", False)
    assert "submit_plan input was invalid" in raised.value.message

    result = await plan(llm, build_id)  # the same activity, retried: the bad answer is not reused
    assert GOAL in result.title and result.usage.calls == 1
    assert model_stats(offline_model)["served"] == 2
    assert len(await ledger(sessions, build_id)) == 2  # both answers were paid for


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("not-json", "the body is not JSON (text/html"),
        ("bad-content", "content: Input should be a valid list"),
    ],
)
async def test_malformed_response_is_retried_a_few_times_then_fails_in_words(
    llm: LlmActivities,
    sessions: Sessions,
    build_id: str,
    offline_model: str,
    kind: str,
    detail: str,
) -> None:
    inject_faults(offline_model, *[{"garbled": kind}] * 3)
    errors = []
    for _ in range(3):  # the activity's retries, as Temporal would make them
        with pytest.raises(ApplicationError) as raised:
            await plan(llm, build_id)
        errors.append(raised.value)
    assert [(e.type, e.non_retryable) for e in errors] == [
        ("MalformedResponse", False),
        ("MalformedResponse", False),
        ("UnusableModelOutput", True),
    ]
    final = errors[-1].message
    assert final.startswith("the model API returned a malformed response: ") and detail in final
    assert final.endswith("(3 unusable answers in a row)")
    assert "Error" not in final and "attribute" not in final  # words, not a Python exception
    assert await ledger(sessions, build_id) == []  # nothing usable was answered, nothing billed


async def test_one_malformed_response_then_a_good_one_is_billed_once(
    llm: LlmActivities, sessions: Sessions, build_id: str, offline_model: str
) -> None:
    inject_faults(offline_model, {"garbled": "not-json"})
    with pytest.raises(ApplicationError):
        await plan(llm, build_id)
    result = await plan(llm, build_id)
    assert GOAL in result.title
    assert model_stats(offline_model) | {"by_role": None} == {
        "requests": 2,
        "served": 1,
        "garbled": 1,
        "distinct_answers": 1,
        "in_flight": 0,
        "by_role": None,
        "pending_faults": 0,
    }
    assert len(await ledger(sessions, build_id)) == 1


async def test_coder_out_of_turns_fails_then_retry_starts_afresh(
    llm: LlmActivities,
    sessions: Sessions,
    build_id: str,
    offline_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned = await plan(llm, build_id)
    code = CodeRequest(build_id=build_id, goal=GOAL, plan_ref=planned.plan_ref)
    monkeypatch.setattr(activities.llm, "CODER_MAX_TURNS", 1)
    with pytest.raises(ApplicationError) as raised:
        await env_for(build_id, "code").run(llm.write_code, code)
    assert raised.value.type == "InvalidModelOutput" and not raised.value.non_retryable
    assert "did not finish within 1 turns" in raised.value.message

    monkeypatch.setattr(activities.llm, "CODER_MAX_TURNS", 8)
    result = await env_for(build_id, "code").run(llm.write_code, code)
    assert result.usage.calls == 2
    assert model_stats(offline_model)["by_role"]["coder"]["served"] == 3
    assert len(await ledger(sessions, build_id)) == 4


@pytest.mark.parametrize(
    ("tool_input", "problem"),
    [
        ({"path": "/etc/passwd", "content": "x"}, "relative"),
        ({"path": "src/../../escape.py", "content": "x"}, ".."),
        ({"path": "C:\\evil.py", "content": "x"}, "relative"),
        ({"path": ".git/config", "content": "x"}, ".git"),
        ({"path": "a.py", "content": 42}, "content"),
        ({"path": "a.py"}, "content: Field required"),
        ({"path": "x" * 300, "content": ""}, "at most 200"),
    ],
)
def test_write_file_refuses_bad_input(tool_input: dict[str, Any], problem: str) -> None:
    files = {"keep.py": b"1"}
    call = ToolUseBlock(id="toolu_1", name="write_file", input=tool_input, type="tool_use")
    result = write_file(call, files)
    assert result["is_error"] is True and problem in result["content"]
    assert files == {"keep.py": b"1"}

    good = ToolUseBlock(
        id="toolu_2", name="write_file", input={"path": "pkg/a.py", "content": "x"}, type="tool_use"
    )
    assert "is_error" not in write_file(good, files) and files["pkg/a.py"] == b"x"


def test_client_leaves_retries_to_temporal(settings: Settings) -> None:
    offline = make_anthropic_client(settings)
    assert (offline.max_retries, offline.timeout, offline.api_key) == (0, 120.0, "offline")
    assert str(offline.base_url).rstrip("/") == settings.model_base_url
    real = make_anthropic_client(
        settings.model_copy(update={"anthropic_api_key": SecretStr(SECRET)})
    )
    assert real.api_key == SECRET
    assert isinstance(real, anthropic.AsyncAnthropic)
