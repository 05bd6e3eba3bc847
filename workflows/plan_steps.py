"""The build's coding step by step: each of the plan's steps is coded and tested until green
(code → test → fix, bounded), then the reviewer reads the change; findings come back as one
more step for the coder, at most max_review_rounds times."""

from __future__ import annotations

from temporalio import workflow

from workflows.coding import Coding

with workflow.unsafe.imports_passed_through():
    from cofounder.payloads import (
        Brief,
        BuildInput,
        ReviewResult,
        StepView,
        TestReport,
    )

# Builds from before steps coded the whole plan in one pass (workflows/coding.py).
STEPS_PATCH = "plan-steps"


class PlanSteps(Coding):
    """From an approved plan to reviewed code, one step of the plan at a time."""

    async def _code_and_review(
        self, input: BuildInput, plan_ref: str
    ) -> tuple[str, TestReport, ReviewResult]:
        """The workspace that passed, its test report and the review, whichever way this
        build codes: in steps, or (builds from before steps) the whole plan at once."""
        resume = self._resuming
        if resume is None:
            self._sandbox = await self._open_sandbox(input)
        stepped = bool(self._view.steps) if resume else workflow.patched(STEPS_PATCH)
        if not stepped:
            return await self._work_until_approved(input, plan_ref)
        return await self._work_in_steps(input, plan_ref)

    async def _work_in_steps(
        self, input: BuildInput, plan_ref: str
    ) -> tuple[str, TestReport, ReviewResult]:
        resume = self._resuming
        planned = len(self._plan_result.steps)
        if resume is None:
            self._view.steps = [StepView(title=title) for title in self._plan_result.steps]
        first = (resume.brief.step or 1) if resume else 1
        for number in range(first, planned + 1):
            brief = resume.brief if resume and number == first else self._brief(input, number)
            workspace_ref, report = await self._green_step(input, plan_ref, brief)
        self._round = resume.round if resume and first > planned else 0
        if resume and first > planned:  # continued within a review round's step
            workspace_ref, report = await self._green_step(input, plan_ref, resume.brief)
        while True:
            review = await self._review(input, plan_ref, workspace_ref, report)
            if review.approved or self._round >= input.max_review_rounds:
                return workspace_ref, report, review
            self._round += 1
            title = f"Address the review's findings (round {self._round})"
            self._view.steps.append(StepView(title=title))
            brief = self._brief(input, len(self._view.steps), review.review_ref)
            workspace_ref, report = await self._green_step(input, plan_ref, brief)

    async def _green_step(
        self, input: BuildInput, plan_ref: str, brief: Brief
    ) -> tuple[str, TestReport]:
        assert brief.step is not None
        self._view.step = brief.step
        workspace_ref, report = await self._agent_until_green(input, plan_ref, brief)
        self._view.steps[brief.step - 1].status = "done"
        self._view.step = None
        return workspace_ref, report

    def _brief(self, input: BuildInput, step: int, review_ref: str | None = None) -> Brief:
        return Brief(
            goal=input.goal,
            plan_ref=self._plan_result.plan_ref,
            step=step,
            review_ref=review_ref,
            base_ref=self._sandbox.base_ref if self._sandbox else None,
        )
