"""BuildWorkflow: plan → [approve] → code → test (→ debug → code → test)* → review → publish → cost.

Deterministic orchestration only: every side effect is an activity, and every large thing
(plans, files, logs, transcripts) travels as an artifact-store reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from workflows.failures import reason
from workflows.guard import LoopGuard

with workflow.unsafe.imports_passed_through():
    # Payload models and activity classes: pydantic and the vendor SDKs must not be re-imported
    # inside the workflow sandbox; only their names and types are used here.
    from pydantic import BaseModel

    from activities.agent.turns import AgentActivities
    from activities.builds import BuildRecordActivities
    from activities.llm import LlmActivities
    from activities.publish import PublishActivities
    from activities.sandbox.activities import SandboxActivities
    from cofounder.payloads import (
        BUILD_STATUS,
        ApprovalDecision,
        Brief,
        BudgetExtension,
        BuildInput,
        BuildStatus,
        BuildView,
        CodeRequest,
        CodeResult,
        DebugRequest,
        DebugResult,
        PlanRequest,
        PlanResult,
        PublishRequest,
        RecordedEvent,
        ReviewRequest,
        ReviewResult,
        SandboxRef,
        SandboxRequest,
        StatusUpdate,
        TestReport,
        TestRequest,
        ToolsRequest,
        TurnRequest,
        TurnResult,
        Usage,
    )


# Retries. Losing a worker, a timeout, a dropped connection or a 5xx is retried with no attempt
# cap: each step is bounded by a deadline (schedule_to_close) instead, so only a reason a person
# can act on ends a build. What the code itself rejects (bad request, bad key, missing sandbox,
# the model's unusable answers counted per call) is non-retryable at the source.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)
# Every activity heartbeats each second (worker.py), so a dead worker's step moves on after
# this long plus the first retry interval, whatever it was doing.
HEARTBEAT = timedelta(seconds=5)
# One attempt of each kind of step, then the deadline of all its attempts together.
MODEL_ATTEMPT = timedelta(minutes=10)
MODEL_DEADLINE = timedelta(minutes=30)
SANDBOX_ATTEMPT = timedelta(minutes=10)
SANDBOX_DEADLINE = timedelta(minutes=30)
PUBLISH_ATTEMPT = timedelta(minutes=2)
PUBLISH_DEADLINE = timedelta(minutes=15)
# Bookkeeping must land: the app database coming back within a day is waited for.
RECORD_ATTEMPT = timedelta(seconds=30)
RECORD_DEADLINE = timedelta(hours=24)


# Builds from before sandbox sessions ran each test run in a sandbox of its own.
SESSIONS_PATCH = "sandbox-sessions"
# Builds from before the agent loop wrote their code in one activity, into the artifact store.
AGENT_LOOP_PATCH = "agent-loop"

# The workflow type's name, which Temporal (and every recorded history) knows it by.
WORKFLOW_NAME = "BuildWorkflow"

Request = TypeVar("Request", bound=BaseModel)
# What each model-calling activity returns: each carries the usage of its calls.
Billed = TypeVar("Billed", PlanResult, CodeResult, DebugResult, ReviewResult, TurnResult)
Arg = TypeVar("Arg")
Out = TypeVar("Out")


class BuildFailed(Exception):
    """A build that ran correctly to a negative end (e.g. tests never passed)."""


class BudgetRanOut(Exception):
    """The next model call needed more budget and none came in time: the build is cancelled."""


@workflow.defn(name=WORKFLOW_NAME)
class BuildWorkflow:
    @workflow.init
    def __init__(self, input: BuildInput) -> None:
        self._input = input
        self._view = BuildView(
            build_id=input.build_id, status=BuildStatus.QUEUED, max_attempts=input.max_attempts
        )
        self._decision: ApprovalDecision | None = None
        # The build's sandbox session, from the first test run until the build ends.
        self._sandbox: SandboxRef | None = None
        self._test_command: str | None = None  # the plan's
        # The run that recorded the latest progress event; starts as the run this one continues.
        self._recorded_by: str | None = workflow.info().continued_run_id
        self._view.run_id = workflow.info().run_id
        self._view.budget_micro_usd = input.budget.limit_micro_usd if input.budget else None

    @workflow.run
    async def run(self, input: BuildInput) -> BuildView:
        try:
            await self._build(input)
        except BudgetRanOut as err:
            await self._finish(BuildStatus.CANCELLED, str(err))
            return self._view
        except (ActivityError, BuildFailed, asyncio.CancelledError) as err:
            if is_cancelled_exception(err):
                await self._finish(BuildStatus.CANCELLED, "cancelled by request")
                raise
            why = reason(err)
            await self._finish(BuildStatus.FAILED, why)
            raise ApplicationError(f"build failed: {why}", non_retryable=True) from err
        return self._view

    @workflow.query
    def status(self) -> BuildView:
        """The live phase, attempt, cost so far and last error."""
        return self._view

    @workflow.update
    async def approve(self, decision: ApprovalDecision) -> BuildView:
        """Approve the plan (the build goes on) or reject it with a comment (it is cancelled)."""
        self._decision = decision
        return self._view

    @workflow.update
    async def extend_budget(self, extension: BudgetExtension) -> BuildView:
        """Raise the build's budget; a build awaiting budget goes on if it is now enough."""
        assert self._view.budget_micro_usd is not None  # the validator saw to it
        self._view.budget_micro_usd += extension.add_micro_usd
        return self._view

    @extend_budget.validator
    def _validate_extend_budget(self, extension: BudgetExtension) -> None:
        if self._view.budget_micro_usd is None:
            raise ValueError("this build has no budget to extend")
        if self._view.status.terminal:
            raise ValueError(f"build already {self._view.status}")

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        if self._view.status != BuildStatus.AWAITING_APPROVAL:
            raise ValueError(f"build is not awaiting approval (status: {self._view.status})")
        if self._decision is not None:
            raise ValueError("the plan was already decided")

    async def _build(self, input: BuildInput) -> None:
        plan = await self._plan(input)
        if plan is None:
            return
        if workflow.patched(AGENT_LOOP_PATCH):
            workspace_ref, report, review = await self._work_until_approved(input, plan.plan_ref)
        else:
            code = CodeRequest(
                build_id=input.build_id,
                owner=input.owner,
                goal=input.goal,
                plan_ref=plan.plan_ref,
            )
            workspace, report = await self._test_until_green(
                input, plan.plan_ref, await self._code(code)
            )
            workspace_ref = workspace.workspace_ref
            review = await self._review(input, plan.plan_ref, workspace_ref, report)
        await self._publish(input, plan, workspace_ref, report, review)
        await self._finish(BuildStatus.SUCCEEDED, None)

    async def _plan(self, input: BuildInput) -> PlanResult | None:
        """The architect's plan, approved when the build asks for approval; None: rejected."""
        await self._set(BuildStatus.PLANNING)
        request = PlanRequest(
            build_id=input.build_id, owner=input.owner, project=input.project, goal=input.goal
        )
        plan = await self._llm(
            LlmActivities.plan, request, f"plan: {_short(input.goal)}", "architect"
        )
        self._view.plan_title = plan.title
        self._view.plan_ref = plan.plan_ref
        self._test_command = plan.test_command
        if input.require_approval:
            await self._set(BuildStatus.AWAITING_APPROVAL)
            await workflow.wait_condition(lambda: self._decision is not None)
            assert self._decision is not None
            if not self._decision.approved:
                comment = self._decision.comment or "no comment"
                await self._finish(BuildStatus.CANCELLED, f"plan rejected: {comment}")
                return None
        return plan

    async def _work_until_approved(
        self, input: BuildInput, plan_ref: str
    ) -> tuple[str, TestReport, ReviewResult]:
        """Code and test until green, then review; findings go back to the coder, at most
        max_review_rounds times. After the last round the code is published with the
        reviewer's words in the pull request, approved or not."""
        self._sandbox = await self._sandbox_step(
            SandboxActivities.open_sandbox,
            SandboxRequest(build_id=input.build_id, owner=input.owner, project=input.project),
            "open the build's sandbox",
        )
        brief = Brief(goal=input.goal, plan_ref=plan_ref)
        for _ in range(input.max_review_rounds + 1):
            workspace_ref, report = await self._agent_until_green(input, plan_ref, brief)
            review = await self._review(input, plan_ref, workspace_ref, report)
            if review.approved:
                break
            brief = Brief(goal=input.goal, plan_ref=plan_ref, review_ref=review.review_ref)
        return workspace_ref, report, review

    async def _review(
        self, input: BuildInput, plan_ref: str, workspace_ref: str, report: TestReport
    ) -> ReviewResult:
        await self._set(BuildStatus.REVIEWING)
        return await self._llm(
            LlmActivities.review,
            ReviewRequest(
                build_id=input.build_id,
                owner=input.owner,
                goal=input.goal,
                plan_ref=plan_ref,
                workspace_ref=workspace_ref,
                log_ref=report.log_ref,
            ),
            "review the code that passed",
            "reviewer",
        )

    async def _publish(
        self,
        input: BuildInput,
        plan: PlanResult,
        workspace_ref: str,
        report: TestReport,
        review: ReviewResult,
    ) -> None:
        await self._set(BuildStatus.PUBLISHING)
        self._view.pull_request = await self._step(
            PublishActivities.publish,
            PublishRequest(
                build_id=input.build_id,
                owner=input.owner,
                project=input.project,
                goal=input.goal,
                title=plan.title,
                plan_ref=plan.plan_ref,
                workspace_ref=workspace_ref,
                review_ref=review.review_ref,
                test_summary=report.summary,
                attempts=self._view.attempt,
                cost=self._view.cost,
            ),
            f"publish branch cofounder/{input.build_id}",
            PUBLISH_ATTEMPT,
            self._deadline(input.deadlines.publish, PUBLISH_DEADLINE),
        )

    async def _agent_until_green(
        self, input: BuildInput, plan_ref: str, brief: Brief
    ) -> tuple[str, TestReport]:
        """In the build's sandbox: the coder works from `brief`, the tests run; on failure the
        debugger reads them and the coder fixes, at most max_attempts test runs.

        Returns the snapshot of the workspace that passed and its test report.
        """
        for attempt in range(1, input.max_attempts + 1):
            await self._agent(input, brief)
            self._view.attempt = attempt
            await self._set(BuildStatus.TESTING)
            report = await self._test(input, None, attempt)
            assert report.sandbox is not None and report.sandbox.snapshot_ref is not None
            workspace_ref = report.sandbox.snapshot_ref
            if report.passed:
                return workspace_ref, report
            self._view.last_error = f"tests failed on attempt {attempt}: {_tail(report.summary)}"
            if attempt == input.max_attempts:
                break
            await self._set(BuildStatus.DEBUGGING)
            diagnosis = await self._llm(
                LlmActivities.debug,
                DebugRequest(
                    build_id=input.build_id,
                    owner=input.owner,
                    goal=input.goal,
                    plan_ref=plan_ref,
                    workspace_ref=workspace_ref,
                    log_ref=report.log_ref,
                ),
                f"diagnose test run {attempt}",
                "debugger",
            )
            brief = Brief(
                goal=input.goal,
                plan_ref=plan_ref,
                diagnosis_ref=diagnosis.diagnosis_ref,
                log_ref=report.log_ref,
            )
        raise BuildFailed(f"tests still failing after {input.max_attempts} attempts")

    async def _agent(self, input: BuildInput, brief: Brief) -> None:
        """The coder's loop: a model turn, its tool calls run in the sandbox, until it answers
        without a tool call; bounded by max_turns and by the loop guard."""
        await self._set(BuildStatus.CODING)
        conversation: str | None = None
        note: str | None = None
        guard = LoopGuard()
        for turn in range(1, input.max_turns + 1):
            request = TurnRequest(
                build_id=input.build_id,
                owner=input.owner,
                brief=brief,
                conversation_ref=conversation,
                note=note,
            )
            answer = await self._llm(
                AgentActivities.model_turn, request, f"coder turn {turn}", "coder"
            )
            if not answer.tool_calls:
                return
            assert self._sandbox is not None
            names = ", ".join(call.name for call in answer.tool_calls)
            tools = await self._sandbox_step(
                AgentActivities.run_tools,
                ToolsRequest(
                    build_id=input.build_id,
                    owner=input.owner,
                    project=input.project,
                    sandbox=self._sandbox,
                    response_ref=answer.response_ref,
                    conversation_ref=answer.conversation_ref,
                ),
                _short(f"turn {turn}: {names}"),
            )
            self._sandbox, conversation = tools.sandbox, tools.conversation_ref
            note = guard.observe([outcome.signature for outcome in tools.outcomes])
            if guard.stuck:
                raise BuildFailed(guard.reason())
        raise BuildFailed(f"the coder did not finish within {input.max_turns} turns")

    async def _test(self, input: BuildInput, workspace_ref: str | None, attempt: int) -> TestReport:
        report = await self._step(
            SandboxActivities.run_tests,
            TestRequest(
                build_id=input.build_id,
                owner=input.owner,
                project=input.project,
                workspace_ref=workspace_ref,
                sandbox=self._sandbox,
                test_command=self._test_command,
            ),
            f"test run {attempt} of {input.max_attempts}",
            SANDBOX_ATTEMPT,
            self._deadline(input.deadlines.sandbox, SANDBOX_DEADLINE),
            # A cancelled build waits until its sandbox run has really been killed.
            ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        self._sandbox = report.sandbox or self._sandbox
        return report

    async def _test_until_green(
        self, input: BuildInput, plan_ref: str, workspace: CodeResult
    ) -> tuple[CodeResult, TestReport]:
        """Run the tests; on failure diagnose, fix and run again, at most max_attempts times.

        Returns the workspace that passed and its test report.
        """
        for attempt in range(1, input.max_attempts + 1):
            self._view.attempt = attempt
            await self._set(BuildStatus.TESTING)
            if self._sandbox is None and workflow.patched(SESSIONS_PATCH):
                self._sandbox = await self._sandbox_step(
                    SandboxActivities.open_sandbox,
                    SandboxRequest(
                        build_id=input.build_id,
                        owner=input.owner,
                        project=input.project,
                        workspace_ref=workspace.workspace_ref,
                    ),
                    "open the build's sandbox",
                )
            report = await self._test(input, workspace.workspace_ref, attempt)
            if report.passed:
                return workspace, report
            self._view.last_error = f"tests failed on attempt {attempt}: {_tail(report.summary)}"
            if attempt == input.max_attempts:
                break
            await self._set(BuildStatus.DEBUGGING)
            diagnosis = await self._llm(
                LlmActivities.debug,
                DebugRequest(
                    build_id=input.build_id,
                    owner=input.owner,
                    goal=input.goal,
                    plan_ref=plan_ref,
                    workspace_ref=workspace.workspace_ref,
                    log_ref=report.log_ref,
                ),
                f"diagnose test run {attempt}",
                "debugger",
            )
            workspace = await self._code(
                CodeRequest(
                    build_id=input.build_id,
                    owner=input.owner,
                    goal=input.goal,
                    plan_ref=plan_ref,
                    workspace_ref=workspace.workspace_ref,
                    diagnosis_ref=diagnosis.diagnosis_ref,
                )
            )
        raise BuildFailed(f"tests still failing after {input.max_attempts} attempts")

    async def _code(self, request: CodeRequest) -> CodeResult:
        await self._set(BuildStatus.CODING)
        what = "fix the code" if request.diagnosis_ref else "write the code"
        return await self._llm(LlmActivities.write_code, request, what, "coder")

    async def _llm(
        self,
        method: Callable[[Any, Request], Awaitable[Billed]],
        request: Request,
        summary: str,
        role: str,
    ) -> Billed:
        """Run one model-calling activity within the budget and add its usage to the cost.

        The activity refuses a call whose worst case passes what is left (OverBudget): the
        build then waits for `extend_budget` and asks again."""
        deadline = self._deadline(self._input.deadlines.model, MODEL_DEADLINE)
        while True:
            try:
                result = await self._step(
                    method, self._allowing(request), summary, MODEL_ATTEMPT, deadline
                )
                break
            except ActivityError as err:
                needed = _needed_budget(err)
                if needed is None:
                    raise
                await self._await_budget(needed)
        self._view.cost = self._view.cost + result.usage
        spent = self._view.cost_by_role.get(role, Usage())
        self._view.cost_by_role[role] = spent + result.usage
        return result

    def _allowing(self, request: Request) -> Request:
        if self._view.budget_micro_usd is None:
            return request
        left = self._view.budget_micro_usd - self._view.cost.cost_micro_usd
        return request.model_copy(update={"allowance_micro_usd": left})

    async def _await_budget(self, needed: int) -> None:
        """Wait in awaiting_budget until the budget is raised, or cancel the build."""
        assert self._input.budget is not None and self._view.budget_micro_usd is not None
        resume, limit = self._view.status, self._view.budget_micro_usd
        self._view.budget_needed_micro_usd = needed
        await self._set(BuildStatus.AWAITING_BUDGET)
        wait = timedelta(seconds=self._input.budget.wait_seconds)
        try:
            await workflow.wait_condition(
                lambda: self._view.budget_micro_usd != limit, timeout=wait
            )
        except TimeoutError:
            raise BudgetRanOut(
                f"the budget of ${limit / 1e6:.2f} ran out: the next model call could cost up to "
                f"${needed / 1e6:.4f} more and no extension came within {wait}"
            ) from None
        self._view.budget_needed_micro_usd = None
        await self._set(resume)

    async def _set(self, status: BuildStatus, error: str | None = None) -> None:
        self._view.status = status
        self._view.phases += 1
        workflow.upsert_search_attributes([BUILD_STATUS.value_set(status.value)])
        run_id = workflow.info().run_id
        update = StatusUpdate(
            build_id=self._input.build_id,
            status=status,
            attempts=self._view.attempt,
            error=error,
            seq=self._view.phases,
            at=workflow.now(),
            cost_micro_usd=self._view.cost.cost_micro_usd,
            run_id=run_id,
            parent_run_id=self._recorded_by if self._recorded_by != run_id else None,
        )
        recorded: RecordedEvent | None = await self._record(
            BuildRecordActivities.record_status, update, f"record phase {status.value}"
        )
        if recorded is not None:  # None in histories from before events named their run
            self._recorded_by = recorded.run_id

    async def _finish(self, status: BuildStatus, error: str | None) -> None:
        """Close the sandbox, settle the bill from the ledger, then record the final status."""
        self._view.last_error = error
        if self._sandbox is not None:
            sandbox, self._sandbox = self._sandbox, None
            await self._sandbox_step(
                SandboxActivities.close_sandbox, sandbox, "close the build's sandbox"
            )
        bill = await self._record(
            BuildRecordActivities.record_cost, self._input.build_id, "settle the bill"
        )
        self._view.cost = bill.usage
        await self._set(status, error)
        workflow.logger.info("build %s ended %s", self._input.build_id, status.value)

    async def _sandbox_step(
        self,
        method: Callable[[Any, Arg], Awaitable[Out]],
        arg: Arg,
        summary: str,
    ) -> Out:
        deadline = self._deadline(self._input.deadlines.sandbox, SANDBOX_DEADLINE)
        return await self._step(method, arg, summary, SANDBOX_ATTEMPT, deadline)

    async def _record(
        self,
        method: Callable[[BuildRecordActivities, Arg], Awaitable[Out]],
        arg: Arg,
        summary: str,
    ) -> Out:
        deadline = self._deadline(self._input.deadlines.record, RECORD_DEADLINE)
        return await self._step(method, arg, summary, RECORD_ATTEMPT, deadline)

    async def _step(
        self,
        method: Callable[[Any, Arg], Awaitable[Out]],
        arg: Arg,
        summary: str,
        attempt: timedelta,
        deadline: timedelta,
        cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    ) -> Out:
        """One activity under the build's retry design: it heartbeats, its attempts are uncapped,
        and `deadline` bounds them all."""
        return await workflow.execute_activity_method(
            method,
            arg,
            summary=summary,
            start_to_close_timeout=attempt,
            schedule_to_close_timeout=deadline,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RETRY,
            cancellation_type=cancellation_type,
        )

    @staticmethod
    def _deadline(seconds: float | None, default: timedelta) -> timedelta:
        return timedelta(seconds=seconds) if seconds else default


def _needed_budget(err: ActivityError) -> int | None:
    """The worst case of the refused call, if `err` is the activity's OverBudget."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "OverBudget" and cause.details:
        return int(cause.details[0])
    return None


def _short(text: str, limit: int = 60) -> str:
    """One line of at most `limit` characters, for the Temporal UI's activity summaries."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _tail(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
