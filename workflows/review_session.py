"""The build's review session: once its pull request is open the build stays `in_review`, and
each batch of feedback (a comment, a review with its comments, a message through the API) is one
iteration on the same branch: the coder answers it in the build's sandbox, the tests pass, the
reviewer checks, the new commit is pushed and a reply posted. Feedback that comes during an
iteration waits its turn, in order. The session ends when the pull request is merged or closed,
or when no feedback comes for its idle time; it continues as new every few iterations.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow

from workflows.iterations import Iterations

with workflow.unsafe.imports_passed_through():
    from activities.builds import BuildRecordActivities
    from activities.sandbox.activities import SandboxActivities
    from cofounder.payloads import (
        SEEN_LIMIT,
        BuildInput,
        BuildStatus,
        Feedback,
        Resume,
        ReviewSettings,
        SessionState,
        Usage,
    )


class ReviewSession(Iterations):
    """From an open pull request to its end: one iteration per batch of feedback."""

    _queue: list[list[Feedback]]  # batches waiting, oldest first
    _seen: list[str]  # the latest feedback ids, so a repeat is dropped
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
        """Back in review, maybe for days: the sandbox is closed (nothing is kept running, or
        paid for, while the pull request waits) and the row shows the bill so far, from the
        ledger, even when no worker is there to answer for the build."""
        await self._park_sandbox()
        bill = await self._record(
            BuildRecordActivities.record_cost, self._input.build_id, "settle the bill so far"
        )
        self._view.cost = bill.usage
        self._view.last_error = None  # the pass succeeded; an iteration's error is its own
        if self._view.iteration == 0:  # the first pass is done: what it made of the goal
            await self._remember(BuildStatus.IN_REVIEW)
        await self._set(BuildStatus.IN_REVIEW)

    async def _park_sandbox(self) -> None:
        """Close the session; the next iteration's first step restores the published code into
        a new one (a failed iteration's changes are gone with it)."""
        if self._sandbox is None or self._published is None:
            return
        sandbox = self._sandbox
        await self._sandbox_step(
            SandboxActivities.close_sandbox, sandbox, "close the sandbox while in review"
        )
        self._sandbox = sandbox.model_copy(update={"snapshot_ref": self._published})

    def _news(self) -> bool:
        return bool(self._queue) or self._closed is not None

    async def _settle(self, settings: ReviewSettings) -> None:
        # A review's comments arrive as separate webhooks within a moment of each other.
        if settings.settle_seconds:
            await workflow.sleep(timedelta(seconds=settings.settle_seconds))

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
