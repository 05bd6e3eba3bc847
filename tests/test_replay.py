"""The committed history of a complete demo build must replay against the current code.

When this fails, a change altered the workflow's command sequence: put it behind
`workflow.patched(...)` instead. Re-record with COFOUNDER_RECORD_HISTORY=1 only for a new
workflow version that old histories no longer need to replay on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

with workflow.unsafe.imports_passed_through():
    # This module defines a workflow, so the workflow sandbox re-imports it: the payload models
    # must be the same classes the workflow module and the data converter use.
    from cofounder.payloads import Brief, BuildInput, BuildView, TestReport
    from cofounder.replay import replay_history
    from workflows.build import WORKFLOW_NAME, BuildWorkflow

HISTORY = Path(__file__).parent / "histories" / "demo_build.json"


def recorded() -> WorkflowHistory:
    return WorkflowHistory.from_json("build-demo", HISTORY.read_text())


def test_recorded_history_is_a_whole_demo_build() -> None:
    text = HISTORY.read_text()
    kinds = ("plan", "model_turn", "run_tools", "open_sandbox", "run_tests", "debug", "review")
    for activity in (*kinds, "publish", "close_sandbox"):
        assert f'"{activity}"' in text
    assert "WORKFLOW_EXECUTION_COMPLETED" in text or "WorkflowExecutionCompleted" in text


@pytest.mark.parametrize(
    "path",
    sorted(HISTORY.parent.rglob("*.json")),
    ids=lambda p: str(p.relative_to(HISTORY.parent).with_suffix("")),
)
async def test_recorded_histories_replay(path: Path) -> None:
    """Every committed history: a demo build, a failed one, an approved and a rejected plan,
    and a failed build an operator reset, which then succeeded; each as recorded today, before
    builds coded the plan step by step (before_steps/), before the agent loop, before builds
    kept one sandbox session and before project memory (before_memory/)."""
    await replay_history(WorkflowHistory.from_json(path.stem, path.read_text()))


@pytest.mark.parametrize(
    "folder",
    [
        HISTORY.parent,
        HISTORY.parent / "before_steps",
        HISTORY.parent / "before_agent_loop",
        HISTORY.parent / "before_sessions",
        HISTORY.parent / "before_memory",
    ],
    ids=lambda folder: folder.name,
)
def test_every_kind_of_build_has_a_history(folder: Path) -> None:
    names = {path.stem for path in folder.glob("*.json")}
    kinds = {"demo_build", "failed_build", "approved_build", "rejected_build", "reset_build"}
    # The reviewer sending the code back, and a run continued as new, exist since the agent loop.
    latest = kinds | {"reviewed_build", "continued_build"}
    if folder.name in ("histories", "before_memory"):  # a review session, one continued as new
        latest |= {"session_build", "continued_session"}
    newer = ("histories", "before_steps", "before_memory")
    assert names == (latest if folder.name in newer else kinds)


@workflow.defn(name=WORKFLOW_NAME)
class SkipsDebugging(BuildWorkflow):
    """A changed command order: reviews after the first test run, whatever its result."""

    @workflow.run
    async def run(self, input: BuildInput) -> BuildView:
        return await super().run(input)

    async def _agent_until_green(
        self, input: BuildInput, plan_ref: str, brief: Brief
    ) -> tuple[str, TestReport]:
        return await super()._agent_until_green(
            input.model_copy(update={"max_attempts": 1}), plan_ref, brief
        )


async def test_changed_command_order_fails_replay() -> None:
    replayer = Replayer(workflows=[SkipsDebugging], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(recorded(), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


def test_replay_command_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "cofounder", "replay", "--file", str(HISTORY)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "deterministic" in ok.stdout

    both = subprocess.run(
        [sys.executable, "-m", "cofounder", "replay", "build-x", "--file", str(HISTORY)],
        capture_output=True,
        text=True,
    )
    assert both.returncode == 2
