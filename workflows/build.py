"""BuildWorkflow: plan → [approve] → for each step: code → test (→ debug → fix → test)* → review
(→ fix → test → review)* → publish → in review (an iteration per feedback) → merged or closed.

Deterministic orchestration only: every side effect is an activity, and every large thing
(plans, files, logs, transcripts) travels as an artifact-store reference. The coding is in
workflows/coding.py, the steps every part shares (retries, budget, phases) in workflows/steps.py.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows.coding import AGENT_LOOP_PATCH
from workflows.failures import reason
from workflows.review_session import ReviewSession
from workflows.steps import (
    PUBLISH_ATTEMPT,
    PUBLISH_DEADLINE,
    BudgetRanOut,
    BuildFailed,
    short,
)

with workflow.unsafe.imports_passed_through():
    # Payload models and activity classes: pydantic and the vendor SDKs must not be re-imported
    # inside the workflow sandbox; only their names and types are used here.
    from activities.llm import LlmActivities
    from activities.publish import PublishActivities
    from cofounder.payloads import (
        ApprovalDecision,
        BillingHold,
        BudgetExtension,
        BuildInput,
        BuildStatus,
        BuildView,
        CodeRequest,
        Feedback,
        PlanRequest,
        PlanResult,
        PublishRequest,
        PullRequestClosed,
        ReviewResult,
        SandboxRef,
        TestReport,
    )

# The workflow type's name, which Temporal (and every recorded history) knows it by.
WORKFLOW_NAME = "BuildWorkflow"
# Kept importable from here, where the tests and the failure wording look for them.
__all__ = ["WORKFLOW_NAME", "BudgetRanOut", "BuildFailed", "BuildWorkflow"]


@workflow.defn(name=WORKFLOW_NAME)
class BuildWorkflow(ReviewSession):
    @workflow.init
    def __init__(self, input: BuildInput) -> None:
        self._input = input
        self._view = BuildView(
            build_id=input.build_id, status=BuildStatus.QUEUED, max_attempts=input.max_attempts
        )
        self._view.budget_micro_usd = input.budget.limit_micro_usd if input.budget else None
        self._decision: ApprovalDecision | None = None
        # The build's sandbox session, from the first test run until the build ends.
        self._sandbox: SandboxRef | None = None
        self._test_command: str | None = None  # the plan's
        self._resuming = input.resume  # consumed by the coder's loop it continues
        if input.resume is not None:  # a continued run: the build's state goes on as it was
            self._view = input.resume.view.model_copy(deep=True)
            self._sandbox = input.resume.sandbox
            self._test_command = input.resume.test_command
        self._open_session(input.session)
        # The run that recorded the latest progress event; starts as the run this one continues.
        self._recorded_by: str | None = workflow.info().continued_run_id
        self._view.run_id = workflow.info().run_id

    @workflow.run
    async def run(self, input: BuildInput) -> BuildView:
        try:
            if input.session is not None:  # a continued review session
                await self._review_session(input)
            else:
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

    @workflow.signal
    async def feedback(self, item: Feedback) -> None:
        """Feedback on the build's pull request: queued for the review session's next iteration
        (a repeat of one already seen is dropped)."""
        self._receive(item)

    @workflow.signal
    async def pull_request_closed(self, closed: PullRequestClosed) -> None:
        """The pull request was merged or closed: the session ends after any iteration running."""
        self._closed = closed

    @workflow.signal
    async def billing_hold(self, hold: BillingHold) -> None:
        """The owner's payment failed (held: no model call until released) or was paid."""
        if hold.version > self._view.hold_version:
            self._view.hold_version, self._view.held = hold.version, hold.held

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
        plan = input.resume.plan if input.resume else await self._plan(input)
        if plan is None:
            return
        self._plan_result = plan
        if workflow.patched(AGENT_LOOP_PATCH):
            workspace_ref, report, review = await self._code_and_review(input, plan.plan_ref)
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
        if input.review is not None:
            self._published = workspace_ref
            await self._review_session(input)
            return
        await self._finish(BuildStatus.SUCCEEDED, None)

    async def _plan(self, input: BuildInput) -> PlanResult | None:
        """The architect's plan, approved when the build asks for approval; None: rejected."""
        await self._set(BuildStatus.PLANNING)
        request = PlanRequest(
            build_id=input.build_id,
            owner=input.owner,
            project=input.project,
            goal=input.goal,
            repository=input.repository,
            memory_ref=await self._recall(input.goal, "the plan"),
        )
        plan = await self._llm(
            LlmActivities.plan, request, f"plan: {short(input.goal)}", "architect"
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
                attempts=sum(step.attempts for step in self._view.steps) or self._view.attempt,
                cost=self._view.cost,
                repository=input.repository,
            ),
            f"publish branch cofounder/{input.build_id}",
            PUBLISH_ATTEMPT,
            self._deadline(input.deadlines.publish, PUBLISH_DEADLINE),
        )
