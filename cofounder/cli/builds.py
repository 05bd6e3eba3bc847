"""Commands about builds: start one, follow it, read and decide its plan, give its pull request
feedback, merge or close it."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

from cofounder.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, say
from cofounder.follow import (
    SUCCEEDED,
    ApiError,
    BuildsApi,
    approve_lines,
    follow,
    follow_iteration,
    iteration_line,
    merge_line,
    plan_lines,
)
from cofounder.payloads import LOCAL_OWNER
from cofounder.settings import Settings


def build(
    goal: Annotated[str, typer.Argument(help="What to build, in plain words.")],
    project: Annotated[str, typer.Option(help="Project slug.")] = "demo",
    require_approval: Annotated[bool, typer.Option(help="Wait for plan approval.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the build until it ends.")] = False,
) -> None:
    """Start a build through the API. Exit 0 on success, 1 on a failed build, 2 on bad input."""
    settings = Settings()
    api = BuildsApi(settings.api_url)
    try:
        started = api.start(project, goal, require_approval)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code == 422 else EXIT_FAILED) from None
    say(f"build {started['id']} {started['status']} (workflow {started['workflow_id']})")
    if wait:
        _follow_to_the_end(settings, api, started["id"])


def follow_build(build_id: str) -> None:
    """Follow a running build (e.g. one an operator has just reset) until it ends.

    Exit 0 when it succeeded (its pull request is in review, or merged), 1 when it failed or
    was cancelled, 2 for an unknown build."""
    settings = Settings()
    _follow_to_the_end(settings, BuildsApi(settings.api_url), build_id)


def _follow_to_the_end(settings: Settings, api: BuildsApi, build_id: str) -> NoReturn:
    try:
        final = follow(api, build_id, say)
    except ApiError as err:
        say(f"error while following build {build_id}: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 422) else EXIT_FAILED) from None
    report(settings, final)
    raise typer.Exit(0 if final["status"] in SUCCEEDED else EXIT_FAILED)


def report(settings: Settings, build: dict[str, Any]) -> None:
    ui_host = settings.temporal_address.rpartition(":")[0] or "127.0.0.1"
    ui = (
        f"http://{ui_host}:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{build['workflow_id']}"
    )
    cost = build.get("cost") or {}
    say(f"\nbuild {build['id']} {build['status']} after {build.get('attempts', 0)} test run(s)")
    say(
        f"  cost: ${cost.get('usd', 0):.4f} ({cost.get('input_tokens', 0)} in / "
        f"{cost.get('output_tokens', 0)} out tokens)"
    )
    for step in build.get("steps") or []:
        title = f" {step['title']}" if step.get("title") else ""
        say(f"  step {step['number']}:{title} ${step['cost']['usd']:.4f}")
    if build.get("error"):
        say(f"  error: {build['error']}")
    if build.get("pull_request"):
        _pull_request(settings, build, build["pull_request"])
    say(f"  Temporal UI: {ui}")
    say(f"  CLI: temporal workflow show --workflow-id {build['workflow_id']}")


def _pull_request(settings: Settings, build: dict[str, Any], pr: dict[str, Any]) -> None:
    say(f"  pull request #{pr['id']}: {pr['title']} ({pr['branch']} → {pr['base']})")
    if build["status"] == "in_review":
        say("  in review: each comment on the pull request is answered with a new commit")
    if pr.get("url"):  # on GitHub, where it is reviewed and merged
        say(f"  on GitHub: {pr['url']}")
        return
    say(f"  diff:   curl {settings.api_url}/api/builds/{build['id']}/pull-request")
    say(f'  feedback: cofounder feedback {build["id"]} "what to change"')
    say(f"  merge:  cofounder merge {build['id']}")
    remote = settings.git_remote(LOCAL_OWNER, build["project"])
    say(f"  branch: git clone --branch {pr['branch']} {remote}")


def plan(build_id: str) -> None:
    """Print a build's plan (and how to decide it, while it awaits approval).

    Exit 2 for an unknown build or one with no plan yet."""
    api = BuildsApi(Settings().api_url)
    try:
        lines = plan_lines(api.plan(build_id))
        awaiting = api.get(build_id)["status"] == "awaiting_approval"
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    for line in lines + (approve_lines(build_id) if awaiting else []):
        say(line)


def approve(
    build_id: str,
    reject: Annotated[bool, typer.Option(help="Reject the plan instead.")] = False,
    comment: str = "",
) -> None:
    """Approve (or reject) a build's plan that is awaiting approval."""
    api = BuildsApi(Settings().api_url)
    try:
        result = api.approve(build_id, approved=not reject, comment=comment)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    say(f"build {result['id']}: plan {'rejected' if reject else 'approved'}")


def merge(build_id: str) -> None:
    """Merge a build's pull request into main, so the project's next build starts from it.

    Exit 2 for an unknown build, one without a pull request, or a conflict with main."""
    api = BuildsApi(Settings().api_url)
    try:
        pr = api.merge(build_id)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    say(merge_line(build_id, pr))


def feedback(
    build_id: str,
    text: Annotated[str, typer.Argument(help="What to change, as a review comment says it.")],
    wait: Annotated[bool, typer.Option(help="Follow the iteration that answers it.")] = False,
) -> None:
    """Give a build's pull request feedback: its review session answers it with a new commit.

    With --wait: exit 0 once the iteration is published, 1 when it failed or the build ended.
    Exit 2 for an unknown build, one without a pull request yet, or one that has ended."""
    api = BuildsApi(Settings().api_url)
    try:
        before = max((it["number"] for it in api.get(build_id).get("iterations", [])), default=0)
        api.feedback(build_id, text)
        say(f"build {build_id}: feedback queued for its next iteration")
        done = follow_iteration(api, build_id, before, say) if wait else None
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    if done is not None:
        say(iteration_line(done) if done else f"build {build_id} ended before answering it")
        raise typer.Exit(0 if done and done["status"] != "failed" else EXIT_FAILED)


def close(build_id: str) -> None:
    """Close a build's pull request unmerged; its review session ends.

    Exit 2 for an unknown build, one without a pull request, or a merged one."""
    api = BuildsApi(Settings().api_url)
    try:
        pr = api.close(build_id)
    except ApiError as err:
        say(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT if err.status_code in (404, 409, 422) else 1) from None
    say(f"build {build_id}: pull request #{pr['id']} ({pr['branch']}) closed")
