"""One iteration of a build's review session: the batch of feedback gathered, answered in the
build's sandbox (code → test → review, as a plan step is), then published: a commit over the pull
request's head and a reply on it. An iteration that cannot finish replies why and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.failures import reason
from workflows.plan_steps import PlanSteps
from workflows.steps import (
    PUBLISH_ATTEMPT,
    PUBLISH_DEADLINE,
    Arg,
    BudgetRanOut,
    BuildFailed,
    Out,
    short,
)

with workflow.unsafe.imports_passed_through():
    from activities.review_session import SessionActivities
    from cofounder.payloads import (
        ITERATIONS_SHOWN,
        Brief,
        BuildInput,
        BuildStatus,
        Feedback,
        FeedbackBrief,
        FeedbackRequest,
        IterationRequest,
        IterationResult,
        IterationView,
        PullRequestClosed,
        ReviewResult,
        ReviewSettings,
        StepView,
        TestReport,
        Usage,
    )


class Iterations(PlanSteps):
    """Answering one batch of feedback on the build's pull request."""

    _closed: PullRequestClosed | None
    _current: list[Feedback] | None  # the batch the running iteration answers
    _feedback: FeedbackBrief | None  # that batch, gathered
    _published: str | None  # the workspace the pull request holds now
    _iteration_started: Usage  # the build's cost when the running iteration began

    async def _iterate(self, input: BuildInput, settings: ReviewSettings) -> None:
        """One iteration: gather the batch, answer it in the sandbox, publish and reply. An
        iteration that cannot finish (tests still failing, its budget spent, a step past its
        deadline) replies why and leaves the pull request as it was; the session goes on."""
        if self._resuming is None:
            self._view.iteration += 1
            self._iteration_started = self._view.cost
            entry = IterationView(number=self._view.iteration, feedback="")
            self._view.iterations = [*self._view.iterations, entry][-ITERATIONS_SHOWN:]
            self._feedback = await self._gather(input)
            entry.feedback = self._feedback.summary
            self._memory_ref = await self._recall(
                self._feedback.summary, f"iteration {self._view.iteration}"
            )
        self._iteration_limit = settings.iteration_budget_micro_usd
        self._iteration_start = self._iteration_started.cost_micro_usd
        answer: tuple[str, TestReport, ReviewResult] | None = None
        error = None
        try:
            answer = await self._answer(input)
        except (BuildFailed, BudgetRanOut, ActivityError) as err:
            if is_cancelled_exception(err):
                raise
            error = reason(err) if isinstance(err, ActivityError) else str(err)
        finally:
            self._iteration_limit = None
        if self._closed is not None:  # merged or closed meanwhile: nothing left to answer
            self._iteration_view().status = "abandoned"
            return
        await self._publish_iteration(input, answer, error)
        assert self._feedback is not None
        await self._remember(BuildStatus.IN_REVIEW, feedback_ref=self._feedback.feedback_ref)

    async def _answer(self, input: BuildInput) -> tuple[str, TestReport, ReviewResult]:
        """Code and test until green, then review (findings back to the coder, bounded)."""
        resume, plan_ref = self._resuming, self._plan_result.plan_ref
        number = self._view.iteration
        if resume is not None:
            brief, self._round = resume.brief, resume.round
            self._memory_ref = brief.memory_ref
        else:
            self._round = 0
            assert self._feedback is not None
            brief = self._iteration_step(input, f"Iteration {number}: {self._feedback.summary}")
        workspace_ref, report = await self._green_step(input, plan_ref, brief)
        while True:
            review = await self._review(input, plan_ref, workspace_ref, report)
            if review.approved or self._round >= input.max_review_rounds:
                return workspace_ref, report, review
            self._round += 1
            title = f"Iteration {number}: address the review's findings"
            brief = self._iteration_step(input, title, review.review_ref)
            workspace_ref, report = await self._green_step(input, plan_ref, brief)

    def _iteration_step(
        self, input: BuildInput, title: str, review_ref: str | None = None
    ) -> Brief:
        assert self._feedback is not None
        self._view.steps.append(StepView(title=short(title, 120)))
        brief = self._brief(input, len(self._view.steps), review_ref)
        return brief.model_copy(
            update={"feedback_ref": self._feedback.feedback_ref, "memory_ref": self._memory_ref}
        )

    async def _gather(self, input: BuildInput) -> FeedbackBrief:
        assert self._current and self._view.pull_request is not None
        request = FeedbackRequest(
            build_id=input.build_id,
            owner=input.owner,
            iteration=self._view.iteration,
            items=self._current,
            pull_request=self._view.pull_request,
            repository=input.repository,
        )
        summary = f"read the feedback of iteration {self._view.iteration}"
        return await self._publish_step(SessionActivities.gather_feedback, request, summary)

    async def _publish_iteration(
        self,
        input: BuildInput,
        answer: tuple[str, TestReport, ReviewResult] | None,
        error: str | None,
    ) -> None:
        """Push the iteration's commit and reply; a push refused (the branch moved) still
        replies, saying so."""
        await self._set(BuildStatus.PUBLISHING)
        request = self._iteration_request(input, answer, error)
        try:
            result = await self._publish_step(
                SessionActivities.publish_iteration,
                request,
                f"publish iteration {request.iteration}",
            )
        except ActivityError as err:
            if is_cancelled_exception(err) or request.workspace_ref is None:
                raise
            request = request.model_copy(update={"workspace_ref": None, "error": reason(err)})
            result = await self._publish_step(
                SessionActivities.publish_iteration,
                request,
                f"reply to iteration {request.iteration}",
            )
        if result.pushed and answer is not None:
            self._published = answer[0]
        self._record_iteration(request, result)

    def _iteration_request(
        self,
        input: BuildInput,
        answer: tuple[str, TestReport, ReviewResult] | None,
        error: str | None,
    ) -> IterationRequest:
        assert self._feedback is not None and self._view.pull_request is not None
        workspace_ref, report, review = answer if answer else (None, None, None)
        return IterationRequest(
            build_id=input.build_id,
            owner=input.owner,
            project=input.project,
            iteration=self._view.iteration,
            pull_request=self._view.pull_request,
            repository=input.repository,
            workspace_ref=workspace_ref,
            feedback=self._feedback,
            feedback_urls=[item.url for item in self._current or [] if item.url],
            passed=report.passed if report else False,
            test_summary=report.summary if report else "",
            review_summary=review.summary if review else "",
            error=error,
            cost=self._view.cost - self._iteration_started,
            # Fixed here, so every retry of the publish makes the same commit.
            date=f"{int(workflow.now().timestamp())} +0000",
        )

    def _record_iteration(self, request: IterationRequest, result: IterationResult) -> None:
        assert self._view.pull_request is not None
        pull = self._view.pull_request
        self._view.pull_request = pull.model_copy(update={"head_sha": result.head_sha})
        entry = self._iteration_view()
        entry.status = "pushed" if result.pushed else "failed" if request.error else "unchanged"
        entry.cost, entry.head_sha = request.cost, result.head_sha
        entry.reply_url, entry.error = result.reply_url, request.error

    def _iteration_view(self) -> IterationView:
        found = [it for it in self._view.iterations if it.number == self._view.iteration]
        if found:
            return found[0]
        entry = IterationView(number=self._view.iteration, feedback="")
        self._view.iterations = [*self._view.iterations, entry][-ITERATIONS_SHOWN:]
        return entry

    async def _publish_step(
        self, method: Callable[[SessionActivities, Arg], Awaitable[Out]], request: Arg, summary: str
    ) -> Out:
        deadline = self._deadline(self._input.deadlines.publish, PUBLISH_DEADLINE)
        return await self._step(method, request, summary, PUBLISH_ATTEMPT, deadline)
