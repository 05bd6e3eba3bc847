"""The reply an iteration leaves on its pull request: the feedback it answers, what it changed,
its tests, review and cost, and a hidden marker by which a retry finds a reply already posted."""

from __future__ import annotations

import textwrap

from activities.gitpush import Pushed
from activities.publish import cost_text, fenced
from cofounder.db.iterations import ITERATION_FAILED, ITERATION_PUSHED, ITERATION_UNCHANGED
from cofounder.payloads.session import IterationRequest


def marker(build_id: str, iteration: int) -> str:
    """The hidden line that ends an iteration's reply: one reply per build and iteration."""
    return f"<!-- cofounder:build={build_id} iteration={iteration} -->"


def iteration_status(request: IterationRequest, pushed: Pushed | None) -> str:
    """pushed, unchanged (its code already was the branch's) or failed (it had none to push)."""
    if pushed is not None:
        return ITERATION_PUSHED
    if request.workspace_ref is None and request.error is not None:
        return ITERATION_FAILED
    return ITERATION_UNCHANGED


def reply_body(request: IterationRequest, status: str, pushed: Pushed | None) -> str:
    """The reply's markdown; the same for the same request and push, so a retry's matches."""
    sections = [
        f"### Iteration {request.iteration}: {request.feedback.summary}\n\n{_answers(request)}",
        f"#### What changed\n\n{_changed(request, status, pushed)}",
        f"#### Tests\n\n{_tests(request)}",
        f"#### Review\n\n{request.review_summary.strip() or 'No review this time.'}",
        f"#### Cost of this iteration\n\n{cost_text(request.cost)}",
        marker(request.build_id, request.iteration),
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _answers(request: IterationRequest) -> str:
    if not request.feedback_urls:
        return "In answer to the feedback above."
    return "In answer to:\n" + "\n".join(f"- {url}" for url in request.feedback_urls)


def _changed(request: IterationRequest, status: str, pushed: Pushed | None) -> str:
    if pushed is not None:
        branch = request.pull_request.branch
        # git indents every line of its stat by one space; the fence would strip only the first.
        stat = fenced(textwrap.dedent(pushed.stat))
        return f"Pushed `{pushed.head_sha[:12]}` to `{branch}`:\n\n{stat}"
    if status == ITERATION_FAILED:
        return f"Nothing was pushed:\n\n{fenced(request.error or '')}"
    return "No change: the branch already holds this code, so nothing was pushed."


def _tests(request: IterationRequest) -> str:
    verdict = "Passed." if request.passed else "Failed."
    summary = request.test_summary.strip()
    return f"{verdict}\n\n{fenced(summary)}" if summary else verdict
