"""How builds coded before the agent loop: one activity wrote all the files into the artifact
store, and each test run had a sandbox of its own. Kept so their histories still replay and
builds started on older workers finish on new ones.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

from workflows.memory import ProjectMemory
from workflows.steps import SANDBOX_ATTEMPT, SANDBOX_DEADLINE, BuildFailed, tail

with workflow.unsafe.imports_passed_through():
    from activities.llm import LlmActivities
    from activities.sandbox.activities import SandboxActivities
    from cofounder.payloads import (
        BuildInput,
        BuildStatus,
        ChangeRequest,
        CodeRequest,
        CodeResult,
        DebugRequest,
        DebugResult,
        SandboxRef,
        SandboxRequest,
        TestReport,
        TestRequest,
    )

Change = TypeVar("Change", bound=ChangeRequest)

# Builds from before sandbox sessions ran each test run in a sandbox of its own.
SESSIONS_PATCH = "sandbox-sessions"


class LegacyCoding(ProjectMemory):
    """Code in one activity, then test, debug and code again; and the test run both ways of
    coding share."""

    _test_command: str | None  # the plan's

    async def _test(
        self,
        input: BuildInput,
        workspace_ref: str | None,
        attempt: int,
        where: str = "",
        step: int | None = None,
    ) -> TestReport:
        report = await self._step(
            SandboxActivities.run_tests,
            TestRequest(
                build_id=input.build_id,
                owner=input.owner,
                project=input.project,
                workspace_ref=workspace_ref,
                sandbox=self._sandbox,
                test_command=self._test_command,
                step=step,
            ),
            f"{where}test run {attempt} of {input.max_attempts}",
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
                self._sandbox = await self._open_sandbox(input, workspace.workspace_ref)
            report = await self._test(input, workspace.workspace_ref, attempt)
            if report.passed:
                return workspace, report
            self._view.last_error = f"tests failed on attempt {attempt}: {tail(report.summary)}"
            if attempt == input.max_attempts:
                break
            diagnosis = await self._diagnose(
                input, plan_ref, workspace.workspace_ref, report, attempt
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

    async def _diagnose(
        self, input: BuildInput, plan_ref: str, workspace_ref: str, report: TestReport, attempt: int
    ) -> DebugResult:
        """The debugger's reading of a failed test run (both ways of coding ask for it)."""
        await self._set(BuildStatus.DEBUGGING)
        request = self._change(DebugRequest, input, plan_ref, workspace_ref, report)
        request.step = self._view.step
        return await self._llm(
            LlmActivities.debug, request, f"diagnose test run {attempt}", "debugger"
        )

    def _change(
        self,
        kind: type[Change],
        input: BuildInput,
        plan_ref: str,
        workspace_ref: str,
        report: TestReport,
    ) -> Change:
        """What the debugger or the reviewer reads: the change from the base, and the log of
        the test run that judged it."""
        return kind(
            build_id=input.build_id,
            owner=input.owner,
            goal=input.goal,
            plan_ref=plan_ref,
            workspace_ref=workspace_ref,
            log_ref=report.log_ref,
            base_ref=self._sandbox.base_ref if self._sandbox else None,
        )

    async def _open_sandbox(
        self, input: BuildInput, workspace_ref: str | None = None
    ) -> SandboxRef:
        """The build's sandbox session; `workspace_ref` for builds from before the agent loop,
        which bring their files."""
        return await self._sandbox_step(
            SandboxActivities.open_sandbox,
            SandboxRequest(
                build_id=input.build_id,
                owner=input.owner,
                project=input.project,
                workspace_ref=workspace_ref,
                repository=input.repository,
            ),
            "open the build's sandbox",
        )

    async def _code(self, request: CodeRequest) -> CodeResult:
        await self._set(BuildStatus.CODING)
        what = "fix the code" if request.diagnosis_ref else "write the code"
        return await self._llm(LlmActivities.write_code, request, what, "coder")
