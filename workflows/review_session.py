"""The build's review session: once its pull request is open the build stays `in_review`, and
each batch of feedback (a comment, a review with its comments, a message through the API) is one
iteration on the same branch: the coder answers it in the build's sandbox, the tests pass, the
reviewer checks, the new commit is pushed and a reply posted. Feedback that comes during an
iteration waits its turn, in order. The session ends when the pull request is merged or closed,
or when no feedback comes for its idle time; it continues as new every few iterations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

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
    from activities.builds import BuildRecordActivities
    from activities.review_session import SessionActivities
    from activities.sandbox.activities import SandboxActivities
    from cofounder.payloads import (
        ITERATIONS_SHOWN,
        SEEN_LIMIT,
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
        Resume,
        ReviewResult,
        ReviewSettings,
        SessionState,
        StepView,
        TestReport,
        Usage,
    )


class ReviewSession(PlanSteps):
    """From an open pull request to its end: one iteration per batch of feedback."""

    _queue: list[list[Feedback]]  # batches waiting, oldest first
    _seen: list[str]  # the latest feedback ids, so a repeat is dropped
    _closed: PullRequestClosed | None
    _current: list[Feedback] | None  # the batch the running iteration answers
    _feedback: FeedbackBrief | None  # that batch, gathered
    _published: str | None  # the workspace the pull request holds now
    _iteration_started: Usage  # the build's cost when the running iteration began
    _in_session: bool = False

    def _open_session(self, state: SessionState | None) -> None:
        """The session's state: empty, or as a continued run carried it."""
        self._queue, self._seen, self._closed = [], [], None
        self._current, self._feedback, self._published = None, None, None
        self._iteration_started = Usage()
        if state is None:
            return
        self._queue, self._seen, self._closed = state.queue, state.seen, state.closed
        self._current, self._feedback = state.current, state.feedback
        self._published = state.workspace_ref
        self._iteration_started = state.iteration_start or Usage()
        self._plan_result = state.plan
        if self._input.resume is None:  # continued between iterations: the state is the session's
            self._view = state.view.model_copy(deep=True)
            self._sandbox, self._test_command = state.sandbox, state.test_command

    def _receive(self, item: Feedback) -> None:
        if item.id in self._seen:
            return
        self._seen.append(item.id)
        del self._seen[:-SEEN_LIMIT]
        for batch in self._queue:  # a review's comments are answered together
            if item.group is not None and any(other.group == item.group for other in batch):
                batch.append(item)
                return
        self._queue.append([item])
        self._view.queued_feedback = len(self._queue)

    async def _review_session(self, input: BuildInput) -> None:
        """Iterate on feedback until the pull request is merged or closed, or the session idles
        out. A continued run picks up where its state says, inside an iteration too."""
        settings = input.review
        assert settings is not None
        self._in_session = True
        if self._current is None and self._view.status != BuildStatus.IN_REVIEW:
            await self._in_review()
        idle = timedelta(seconds=settings.idle_seconds)
        done_here = 0
        while self._closed is None:
            if self._current is None:
                try:
                    await workflow.wait_condition(self._news, timeout=idle)
                except TimeoutError:
                    await self._finish(BuildStatus.EXPIRED, f"no feedback came within {idle}")
                    return
                if self._closed is not None:
                    break
                if done_here >= settings.iterations_per_run or self._history_is_long():
                    await self._continue_session(None)
                await self._settle(settings)
                self._current = self._queue.pop(0)
                self._view.queued_feedback = len(self._queue)
            await self._iterate(input, settings)
            self._current, self._feedback = None, None
            done_here += 1
            if self._closed is None:
                await self._in_review()
        merged = self._closed.merged
        await self._finish(BuildStatus.MERGED if merged else BuildStatus.CLOSED, None)

    async def _in_review(self) -> None:
        """Back in review, maybe for days: the row shows the bill so far, from the ledger, even
        when no worker is there to answer for the build."""
        bill = await self._record(
            BuildRecordActivities.record_cost, self._input.build_id, "settle the bill so far"
        )
        self._view.cost = bill.usage
        await self._set(BuildStatus.IN_REVIEW)

    def _news(self) -> bool:
        return bool(self._queue) or self._closed is not None

    async def _settle(self, settings: ReviewSettings) -> None:
        # A review's comments arrive as separate webhooks within a moment of each other.
        if settings.settle_seconds:
            await workflow.sleep(timedelta(seconds=settings.settle_seconds))

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

    async def _answer(self, input: BuildInput) -> tuple[str, TestReport, ReviewResult]:
        """Code and test until green, then review (findings back to the coder, bounded)."""
        resume, plan_ref = self._resuming, self._plan_result.plan_ref
        number = self._view.iteration
        if resume is not None:
            brief, self._round = resume.brief, resume.round
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
        return brief.model_copy(update={"feedback_ref": self._feedback.feedback_ref})

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
        replies, saying so. A failed iteration's sandbox goes back to the published code."""
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
        if not result.pushed:
            await self._reset_sandbox()
        elif answer is not None:
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

    async def _reset_sandbox(self) -> None:
        """Close the session; the next step's reconnect restores the published code."""
        if self._sandbox is None or self._published is None:
            return
        sandbox = self._sandbox
        await self._sandbox_step(
            SandboxActivities.close_sandbox, sandbox, "reset the sandbox to the pull request"
        )
        self._sandbox = sandbox.model_copy(update={"snapshot_ref": self._published})

    async def _publish_step(
        self, method: Callable[[SessionActivities, Arg], Awaitable[Out]], request: Arg, summary: str
    ) -> Out:
        deadline = self._deadline(self._input.deadlines.publish, PUBLISH_DEADLINE)
        return await self._step(method, request, summary, PUBLISH_ATTEMPT, deadline)

    def _continued(self, resume: Resume | None) -> BuildInput:
        """The next run's input: where the coding is (`resume`) and, in review, the session."""
        update: dict[str, Any] = {"resume": resume}
        if self._in_session:
            update["session"] = self._session_state()
        return self._input.model_copy(update=update)

    def _session_state(self) -> SessionState:
        assert self._published is not None
        return SessionState(
            view=self._view,
            plan=self._plan_result,
            sandbox=self._sandbox,
            test_command=self._test_command,
            workspace_ref=self._published,
            queue=self._queue,
            seen=self._seen,
            current=self._current,
            feedback=self._feedback,
            iteration_start=self._iteration_started,
            closed=self._closed,
        )

    async def _continue_session(self, resume: Resume | None) -> NoReturn:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._continued(resume))
