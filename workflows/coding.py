"""The build's coding: the coder's loop in the sandbox, test runs, the debugger and the
reviewer's rounds; and the older single-activity coder that recorded histories still replay.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow

from workflows.guard import LoopGuard
from workflows.legacy import LegacyCoding
from workflows.steps import (
    BuildFailed,
    short,
    tail,
)

with workflow.unsafe.imports_passed_through():
    from activities.agent.turns import AgentActivities
    from activities.llm import LlmActivities
    from cofounder.payloads import (
        Brief,
        BuildInput,
        BuildStatus,
        GuardState,
        PlanResult,
        Resume,
        ReviewRequest,
        ReviewResult,
        TestReport,
        ToolsRequest,
        TurnRequest,
    )

# Builds from before the agent loop wrote their code in one activity, into the artifact store.
AGENT_LOOP_PATCH = "agent-loop"


class Coding(LegacyCoding):
    """From a plan to code whose tests pass and that the reviewer has seen."""

    _plan_result: PlanResult
    _resuming: Resume | None  # set on a continued run until its coder's loop picks up
    # Where the coding is: the review round and the test run the current pass leads to.
    _round: int = 0
    _attempt: int = 1

    async def _work_until_approved(
        self, input: BuildInput, plan_ref: str
    ) -> tuple[str, TestReport, ReviewResult]:
        """Code and test until green, then review; findings go back to the coder, at most
        max_review_rounds times. After the last round the code is published with the
        reviewer's words in the pull request, approved or not."""
        resume = self._resuming
        brief = resume.brief if resume else Brief(goal=input.goal, plan_ref=plan_ref)
        for self._round in range(resume.round if resume else 0, input.max_review_rounds + 1):
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
        request = self._change(ReviewRequest, input, plan_ref, workspace_ref, report)
        return await self._llm(
            LlmActivities.review, request, "review the code that passed", "reviewer"
        )

    async def _agent_until_green(
        self, input: BuildInput, plan_ref: str, brief: Brief
    ) -> tuple[str, TestReport]:
        """In the build's sandbox: the coder works from `brief`, the tests run; on failure the
        debugger reads them and the coder fixes, at most max_attempts test runs.

        Returns the snapshot of the workspace that passed and its test report.
        """
        first = self._resuming.attempt if self._resuming else 1
        conversation: str | None = None
        where = f"step {brief.step}: " if brief.step is not None else ""
        for attempt in range(first, input.max_attempts + 1):
            self._attempt = attempt
            # A fix goes on in the pass's conversation: the coder remembers what it did.
            conversation = await self._agent(input, brief, conversation)
            self._view.attempt += 1  # the build's test runs, every pass's together
            if self._view.step is not None:
                self._view.steps[self._view.step - 1].attempts = attempt
            await self._set(BuildStatus.TESTING)
            report = await self._test(input, None, attempt, where, brief.step)
            assert report.sandbox is not None and report.sandbox.snapshot_ref is not None
            workspace_ref = report.sandbox.snapshot_ref
            if report.passed:
                return workspace_ref, report
            self._view.last_error = (
                f"{where}tests failed on attempt {attempt}: {tail(report.summary)}"
            )
            if attempt == input.max_attempts:
                break
            diagnosis = await self._diagnose(input, plan_ref, workspace_ref, report, attempt)
            brief = brief.model_copy(
                update={"diagnosis_ref": diagnosis.diagnosis_ref, "log_ref": report.log_ref}
            )
        raise BuildFailed(f"{where}tests still failing after {input.max_attempts} attempts")

    async def _agent(self, input: BuildInput, brief: Brief, conversation: str | None) -> str:
        """The coder's loop: a model turn, its tool calls run in the sandbox, until it answers
        without a tool call; bounded by max_turns and by the loop guard. Given a
        `conversation`, the loop goes on in it with the brief's news (a fix); the conversation
        as the coder left it is returned."""
        resume, self._resuming = self._resuming, None
        if resume is None:
            await self._set(BuildStatus.CODING)
        follow_up = conversation is not None and resume is None
        conversation = resume.conversation_ref if resume else conversation
        note = resume.note if resume else None
        guard = LoopGuard(resume.guard.last, resume.guard.repeats) if resume else LoopGuard()
        for turn in range(resume.turn if resume else 1, input.max_turns + 1):
            request = TurnRequest(
                build_id=input.build_id,
                owner=input.owner,
                brief=brief,
                conversation_ref=conversation,
                note=note,
                follow_up=follow_up,
            )
            answer = await self._llm(
                AgentActivities.model_turn, request, f"coder turn {turn}", "coder"
            )
            follow_up, conversation = False, answer.conversation_ref
            if not answer.tool_calls:
                return conversation
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
                    step=brief.step,
                ),
                short(f"turn {turn}: {names}"),
            )
            self._sandbox, conversation = tools.sandbox, tools.conversation_ref
            note = guard.observe([outcome.signature for outcome in tools.outcomes])
            if guard.stuck:
                raise BuildFailed(guard.reason())
            if self._history_is_long():
                assert conversation is not None
                await self._continue_as_new(brief, conversation, turn + 1, note, guard)
        raise BuildFailed(f"the coder did not finish within {input.max_turns} turns")

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() > self._input.continue_after_events
            or info.get_current_history_size() > self._input.continue_after_bytes
        )

    async def _continue_as_new(
        self, brief: Brief, conversation: str, turn: int, note: str | None, guard: LoopGuard
    ) -> NoReturn:
        """Go on in a new run with a fresh history, carrying references only."""
        assert self._sandbox is not None
        resume = Resume(
            view=self._view,
            plan=self._plan_result,
            sandbox=self._sandbox,
            test_command=self._test_command,
            round=self._round,
            attempt=self._attempt,
            brief=brief,
            conversation_ref=conversation,
            turn=turn,
            note=note,
            guard=GuardState(last=guard.last, repeats=guard.repeats),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._continued(resume))

    def _continued(self, resume: Resume | None) -> BuildInput:
        """The next run's input, picking up at `resume`."""
        return self._input.model_copy(update={"resume": resume})
