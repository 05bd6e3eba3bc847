"""Project memory in a build: recall before planning and before each review iteration;
remember at the end of the first pass, of the build, and of each iteration answered, before the
phase that ends it is recorded, so a build shown in review (or ended) has been remembered.

Memory helps a build, it never stops one: a store still failing at its deadline is logged and
the build goes on without it. Histories from before memory replay without these steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows.steps import Arg, Out, Steps, short

with workflow.unsafe.imports_passed_through():
    from activities.memory import MemoryActivities
    from cofounder.payloads import BuildStatus, PlanResult, RecallRequest, RememberRequest

MEMORY_PATCH = "project-memory"
MEMORY_ATTEMPT = timedelta(seconds=30)
MEMORY_DEADLINE = timedelta(minutes=5)


class ProjectMemory(Steps):
    _plan_result: PlanResult
    _memory_ref: str | None = None  # what the running iteration was reminded of

    async def _recall(self, query: str, purpose: str) -> str | None:
        """The project's memories bearing on `query`, as a reference; None: none, or the store
        could not answer."""
        if not workflow.patched(MEMORY_PATCH):
            return None
        request = RecallRequest(
            build_id=self._input.build_id,
            owner=self._input.owner,
            project=self._input.project,
            query=query[:20_000],
        )
        recalled = await self._memory_step(
            MemoryActivities.recall, request, f"recall for {purpose}"
        )
        return recalled.memory_ref if recalled is not None else None

    async def _remember(
        self, status: BuildStatus, error: str | None = None, feedback_ref: str | None = None
    ) -> None:
        """Keep what this build decided and made of its goal (or an iteration's feedback)."""
        if not workflow.patched(MEMORY_PATCH):
            return
        plan = getattr(self, "_plan_result", None)
        pull = self._view.pull_request
        request = RememberRequest(
            build_id=self._input.build_id,
            owner=self._input.owner,
            project=self._input.project,
            goal=self._input.goal,
            status=status,
            plan_ref=plan.plan_ref if plan is not None else None,
            error=error,
            pull_request_url=pull.url if pull is not None else None,
            feedback_ref=feedback_ref,
            iteration=self._view.iteration if feedback_ref else None,
        )
        what = f"iteration {self._view.iteration}" if feedback_ref else status.value
        await self._memory_step(MemoryActivities.remember, request, f"remember: {short(what)}")

    async def _memory_step(
        self, method: Callable[[MemoryActivities, Arg], Awaitable[Out]], arg: Arg, summary: str
    ) -> Out | None:
        """A memory activity within its own deadline; None when the store still failed then
        (logged), since memory helps a build and never stops one."""
        try:
            return await self._step(method, arg, summary, MEMORY_ATTEMPT, MEMORY_DEADLINE)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning(
                "%s failed; the build goes on without it: %s", summary, err.cause
            )
            return None
