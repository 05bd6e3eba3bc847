"""The build workflow's steps: every activity under one retry design and the budget, and the
phase changes it records. Deterministic: only `workflow` calls and payload models.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

from workflows.queues import kind_of, queue_name

with workflow.unsafe.imports_passed_through():
    # Payload models and activity classes: pydantic and the vendor SDKs must not be re-imported
    # inside the workflow sandbox; only their names and types are used here.
    from pydantic import BaseModel

    from activities.builds import BuildRecordActivities
    from activities.sandbox.activities import SandboxActivities
    from cofounder.payloads import (
        BUILD_STATUS,
        BuildInput,
        BuildStatus,
        BuildView,
        CodeResult,
        DebugResult,
        PlanResult,
        RecordedEvent,
        ReviewResult,
        SandboxRef,
        StatusUpdate,
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


Request = TypeVar("Request", bound=BaseModel)
# What each model-calling activity returns: each carries the usage of its calls.
Billed = TypeVar("Billed", PlanResult, CodeResult, DebugResult, ReviewResult, TurnResult)
Arg = TypeVar("Arg")
Out = TypeVar("Out")


class BuildFailed(Exception):
    """A build that ran correctly to a negative end (e.g. tests never passed)."""


class BudgetRanOut(Exception):
    """The next model call needed more budget and none came in time: the build is cancelled."""


class IterationBudgetRanOut(BuildFailed):
    """A review iteration's own budget would be passed: that iteration stops, the session not."""


class Steps:
    """What every part of the build workflow shares: its input, its live view, its sandbox."""

    _input: BuildInput
    _view: BuildView
    _sandbox: SandboxRef | None
    # The run that recorded the latest progress event.
    _recorded_by: str | None
    # In a review iteration with a budget of its own: its limit, and the build's cost before it.
    _iteration_limit: int | None = None
    _iteration_start: int = 0

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
            await self._unless_held()
            try:
                result = await self._step(
                    method, self._allowing(request, role), summary, MODEL_ATTEMPT, deadline
                )
                break
            except ActivityError as err:
                needed = needed_budget(err)
                if needed is None:
                    raise
                iteration_left = self._iteration_left()
                if iteration_left is not None and needed > iteration_left:
                    assert self._iteration_limit is not None
                    raise IterationBudgetRanOut(
                        f"this iteration's budget of ${self._iteration_limit / 1e6:.2f} ran out:"
                        f" the next model call could cost up to ${needed / 1e6:.4f} more"
                    ) from None
                await self._await_budget(needed)
        self._view.cost = self._view.cost + result.usage
        spent = self._view.cost_by_role.get(role, Usage())
        self._view.cost_by_role[role] = spent + result.usage
        if self._view.step is not None:
            step = self._view.steps[self._view.step - 1]
            step.cost = step.cost + result.usage
        return result

    async def _unless_held(self) -> None:
        """Wait in on_hold while the owner's payment has failed: a held build spends nothing.
        A cancel (the subscription ended) ends the wait like any other."""
        if not self._view.held:
            return
        resume = self._view.status
        await self._set(BuildStatus.ON_HOLD)
        await workflow.wait_condition(lambda: not self._view.held)
        await self._set(resume)

    def _allowing(self, request: Request, role: str) -> Request:
        model = self._input.models.get(role)
        if model is not None:
            request = request.model_copy(update={"model": model})
        lefts = [self._iteration_left()]
        if self._view.budget_micro_usd is not None:
            lefts.append(self._view.budget_micro_usd - self._view.cost.cost_micro_usd)
        known = [left for left in lefts if left is not None]
        if not known:
            return request
        return request.model_copy(update={"allowance_micro_usd": min(known)})

    def _iteration_left(self) -> int | None:
        if self._iteration_limit is None:
            return None
        spent = self._view.cost.cost_micro_usd - self._iteration_start
        return self._iteration_limit - spent

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
        if self._view.step is not None:
            self._view.steps[self._view.step - 1].status = status.value
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
            # Only a parked build is read from its row; a working one changes too fast.
            view=self._view.model_copy(deep=True) if status.parked else None,
        )
        recorded: RecordedEvent | None = await self._record(
            BuildRecordActivities.record_status, update, f"record phase {status.value}"
        )
        if recorded is not None:  # None in histories from before events named their run
            self._recorded_by = recorded.run_id

    async def _finish(self, status: BuildStatus, error: str | None) -> None:
        """Close the sandbox, settle the bill from the ledger, remember how it went, then record
        the final status."""
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
        await self._remember(status, error)
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
        and `deadline` bounds them all. It runs on its kind's queue beside the build's own."""
        return await workflow.execute_activity_method(
            method,
            arg,
            task_queue=queue_name(workflow.info().task_queue, kind_of(method.__name__)),
            summary=summary,
            start_to_close_timeout=attempt,
            schedule_to_close_timeout=deadline,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RETRY,
            cancellation_type=cancellation_type,
        )

    async def _remember(
        self, status: BuildStatus, error: str | None = None, feedback_ref: str | None = None
    ) -> None:
        """Project memory's part (workflows/memory.py); nothing here."""

    @staticmethod
    def _deadline(seconds: float | None, default: timedelta) -> timedelta:
        return timedelta(seconds=seconds) if seconds else default


def needed_budget(err: ActivityError) -> int | None:
    """The worst case of the refused call, if `err` is the activity's OverBudget."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "OverBudget" and cause.details:
        return int(cause.details[0])
    return None


def short(text: str, limit: int = 60) -> str:
    """One line of at most `limit` characters, for the Temporal UI's activity summaries."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tail(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
