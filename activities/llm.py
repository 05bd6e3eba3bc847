"""Claude roles as activities: architect, coder, debugger and reviewer, through the anthropic SDK.

Every call goes through `RoleCalls.call` (activities/role_calls.py) and the call journal
(activities/journal.py): a retry reuses the answers already paid for, and each call has exactly
one ledger row. Large things (plans, workspaces, diagnoses, reviews, transcripts) go to the
artifact store; results carry references.
"""

from __future__ import annotations

from typing import Any, NoReturn

import anthropic
from anthropic.types import ToolUseBlock
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.diff import render_diff
from activities.errors import (
    InvalidModelOutput,
    activity_boundary,
)
from activities.gitbase import base_listing
from activities.github.app import GitHubApp
from activities.github.mirror import base_remote
from activities.gitrepo import check_names
from activities.journal import JournaledCalls
from activities.llm_tools import (
    DIAGNOSIS_HEADING,
    DIFF_HEADING,
    DiagnosisOutput,
    PlanOutput,
    ReviewOutput,
    render_files,
    render_plan,
    render_tree,
    shorten,
    tail,
    write_file,
)
from activities.role_calls import RoleCalls
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import (
    CodeRequest,
    CodeResult,
    DebugRequest,
    DebugResult,
    PlanRequest,
    PlanResult,
    ReviewRequest,
    ReviewResult,
    Usage,
)
from cofounder.settings import Settings

# Enough for a write / fix / confirm cycle with room for self-correction, never an endless loop.
CODER_MAX_TURNS = 8
OFFLINE_API_KEY = "offline"


def make_anthropic_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The one Claude client; Temporal owns retries, so the SDK makes none of its own."""
    key = settings.anthropic_api_key
    return anthropic.AsyncAnthropic(
        api_key=key.get_secret_value() if key is not None else OFFLINE_API_KEY,
        base_url=settings.model_base_url,
        max_retries=0,
        timeout=settings.llm_timeout_seconds,
    )


class LlmActivities:
    """The four model-calling activities; clients and stores come in through the constructor."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        store: ArtifactStore,
        sessions: async_sessionmaker[AsyncSession],
        github: GitHubApp | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.github = github
        self.calls = JournaledCalls(sessions)
        self.roles = RoleCalls(client, settings, self.calls)

    @activity.defn
    @activity_boundary
    async def plan(self, request: PlanRequest) -> PlanResult:
        store = self.store.for_owner(request.owner)
        check_names(request.owner, request.project, request.build_id)
        remote = await base_remote(
            self.settings, self.github, request.owner, request.project, request.repository
        )
        repository = render_tree(await base_listing(remote, request.build_id))
        prompt = f"Goal: {request.goal}\nProject: {request.project}\n\n{repository}\n\n"
        if request.memory_ref:
            prompt += (await store.get_json(request.memory_ref))["text"] + "\n\n"
        prompt += "Plan this build."
        plan, usage = await self.roles.forced(
            store,
            "architect",
            request.build_id,
            prompt,
            PlanOutput,
            request.allowance_micro_usd,
            model=request.model,
        )
        return PlanResult(
            plan_ref=await store.put_json(plan.model_dump()),
            title=plan.title,
            summary=shorten(plan.summary),
            files=plan.files,
            test_command=plan.test_command,
            usage=usage,
            steps=[step.title for step in plan.steps],
        )

    @activity.defn
    @activity_boundary
    async def write_code(self, request: CodeRequest) -> CodeResult:
        store = self.store.for_owner(request.owner)
        files = await store.get_tree(request.workspace_ref) if request.workspace_ref else {}
        prompt = await self._context(store, request.goal, request.plan_ref, files)
        if request.diagnosis_ref:
            diagnosis = await store.get_json(request.diagnosis_ref)
            prompt += f"\n\n{DIAGNOSIS_HEADING}\n{diagnosis['summary']}\n\nFix: {diagnosis['fix']}"
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        usage, first_key = Usage(), ""
        for turn in range(CODER_MAX_TURNS):
            left = request.allowance_micro_usd
            left = None if left is None else left - usage.cost_micro_usd
            message, key, used = await self.roles.call(
                store,
                "coder",
                request.build_id,
                turn,
                messages,
                allowance=left,
                model=request.model,
            )
            usage, first_key = usage + used, first_key or key
            calls = [block for block in message.content if isinstance(block, ToolUseBlock)]
            content = [
                block.model_dump(mode="json", exclude_none=True) for block in message.content
            ]
            messages.append({"role": "assistant", "content": content})
            if not calls:
                break
            messages.append(
                {"role": "user", "content": [write_file(call, files) for call in calls]}
            )
        else:
            await self._coder_failed(
                store, first_key, f"did not finish within {CODER_MAX_TURNS} turns"
            )
        if not files:
            await self._coder_failed(store, first_key, "wrote no files")
        return CodeResult(
            workspace_ref=await store.put_tree(files), files=sorted(files), usage=usage
        )

    @activity.defn
    @activity_boundary
    async def debug(self, request: DebugRequest) -> DebugResult:
        store = self.store.for_owner(request.owner)
        prompt = await self._with_test_log(store, request, "Failing test log")
        diagnosis, usage = await self.roles.forced(
            store,
            "debugger",
            request.build_id,
            prompt,
            DiagnosisOutput,
            request.allowance_micro_usd,
            step=request.step,
            model=request.model,
        )
        return DebugResult(
            diagnosis_ref=await store.put_json(diagnosis.model_dump()),
            summary=shorten(diagnosis.summary),
            usage=usage,
        )

    @activity.defn
    @activity_boundary
    async def review(self, request: ReviewRequest) -> ReviewResult:
        store = self.store.for_owner(request.owner)
        prompt = await self._with_test_log(store, request, "Test log")
        review, usage = await self.roles.forced(
            store,
            "reviewer",
            request.build_id,
            prompt,
            ReviewOutput,
            request.allowance_micro_usd,
            model=request.model,
        )
        return ReviewResult(
            approved=review.approved,
            summary=shorten(review.summary),
            review_ref=await store.put_json(review.model_dump()),
            usage=usage,
        )

    async def _coder_failed(self, store: ArtifactStore, first_key: str, problem: str) -> NoReturn:
        # Start the conversation afresh on retry rather than replaying the same dead end.
        failure = InvalidModelOutput(f"the coder {problem}")
        raise await self.calls.reject(store, first_key, failure)

    async def _with_test_log(
        self, store: ArtifactStore, request: DebugRequest | ReviewRequest, heading: str
    ) -> str:
        """The goal, plan and the change from the base as a diff, then the tail of the test
        run's log under `heading`: small however large the repository."""
        files = await store.get_tree(request.workspace_ref)
        base = await store.get_tree(request.base_ref) if request.base_ref else {}
        plan = render_plan(await store.get_json(request.plan_ref))
        prompt = (
            f"Goal: {request.goal}\n\nPlan:\n{plan}\n\n{DIFF_HEADING}\n{render_diff(base, files)}"
        )
        # Test output is whatever the code printed; never let a stray byte fail the activity.
        log = (await store.get_bytes(request.log_ref)).decode("utf-8", errors="replace")
        return f"{prompt}\n\n{heading}:\n{tail(log)}"

    async def _context(
        self, store: ArtifactStore, goal: str, plan_ref: str, files: dict[str, bytes]
    ) -> str:
        plan = render_plan(await store.get_json(plan_ref))
        return f"Goal: {goal}\n\nPlan:\n{plan}\n\nCurrent workspace files:\n{render_files(files)}"
