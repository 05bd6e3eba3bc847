"""A review session's activities for real: feedback gathered with its review threads through
githubkit against the GitHub double, and iterations pushed over the pull request's head and
answered once, on GitHub and on the local remote, however often retried."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from githubkit_schemas.latest.models import (
    PullRequestReviewComment,
    WebhookPullRequestReviewCommentCreatedPropComment,
)
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.github.app import GitHubApp
from activities.publish import PublishActivities
from activities.review_session import SessionActivities
from cofounder.artifacts import ArtifactStore
from cofounder.db import PullRequest, ReviewIteration
from cofounder.payloads import PublishRequest, PullRequestRef, RepositoryLink, Usage
from cofounder.payloads.session import (
    Feedback,
    FeedbackBrief,
    FeedbackRequest,
    IterationRequest,
    IterationResult,
)
from cofounder.settings import Settings
from tests import helpers, remotes
from tests.doubles.github_repos import commit_files
from tests.github_fixtures import InstalledApp

Sessions = async_sessionmaker[AsyncSession]
REPOSITORY = "acme/slugs"
FILES = {
    "slugkit/__init__.py": b"def slugify(text, sep='-'):\n    return sep.join(text.split())\n",
    "tests/test_slugkit.py": b"from slugkit import slugify\n",
}
RENAMED = {
    "slugkit/__init__.py": b"def slugify(text, separator='-'):\n"
    b"    return separator.join(text.split())\n"
}
DATE = "1767225600 +0000"  # the iteration's date, fixed by its workflow
COMMENTS = "GET /repos/{owner}/{repo}/pulls/{number}/comments"
POST_REPLY = "POST /repos/{owner}/{repo}/issues/{number}/comments"


def app_of(github: InstalledApp) -> GitHubApp:
    return GitHubApp(github.app_id, SecretStr(github.private_key_pem), github.api_url)


def link_of(github: InstalledApp) -> RepositoryLink:
    return RepositoryLink(repository=REPOSITORY, installation_id=github.installation_id)


async def published(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp | None
) -> tuple[str, PullRequestRef]:
    """A build whose first pass is published: on the double's acme/slugs, or locally."""
    build_id = await helpers.insert_build(sessions, goal="slugs")
    link = None
    if github is not None:
        github.double.add_repository(REPOSITORY, github.installation_id, files={"README.md": b"#"})
        link = link_of(github)
    request = PublishRequest(
        build_id=build_id,
        project="demo",
        goal="slugs",
        title="Add slugkit",
        plan_ref=await store.put_json({"title": "Slugkit", "steps": ["Write"]}),
        workspace_ref=await store.put_tree(FILES),
        review_ref=await store.put_json({"summary": "Fine."}),
        test_summary="1 passed",
        attempts=1,
        cost=Usage(),
        repository=link,
    )
    app = app_of(github) if github is not None else None
    publish = PublishActivities(settings, store, sessions, app).publish
    return build_id, await ActivityEnvironment().run(publish, request)


def iteration(
    build_id: str, pull: PullRequestRef, workspace_ref: str | None, **extra: object
) -> IterationRequest:
    fields: dict[str, object] = {
        "build_id": build_id,
        "project": "demo",
        "iteration": 1,
        "pull_request": pull,
        "workspace_ref": workspace_ref,
        "feedback": FeedbackBrief(feedback_ref="sha256:" + "0" * 64, summary="@alice: rename sep"),
        "feedback_urls": ["https://example.test/acme/slugs/pull/1#discussion_r1"],
        "passed": True,
        "test_summary": "3 passed in 0.02s",
        "review_summary": "Renamed everywhere.",
        "cost": Usage(calls=2, input_tokens=900, output_tokens=120, cost_micro_usd=4_321),
        "date": DATE,
    }
    return IterationRequest.model_validate(fields | extra)


async def workspace(
    store: ArtifactStore, bare: Path, head: str, changes: dict[str, bytes] | None = None
) -> str:
    """The sandbox's files after an iteration: the branch's head with `changes`."""
    return await store.put_tree(remotes.tree_of(bare, head) | (changes or {}))


async def run_iteration(
    activities: SessionActivities, request: IterationRequest
) -> IterationResult:
    return await ActivityEnvironment().run(activities.publish_iteration, request)


async def rows(sessions: Sessions, build_id: str) -> list[ReviewIteration]:
    async with sessions() as session:
        query = select(ReviewIteration).where(ReviewIteration.build_id == build_id)
        return list((await session.scalars(query.order_by(ReviewIteration.number))).all())


async def pull_row(sessions: Sessions, build_id: str) -> PullRequest:
    async with sessions() as session:
        query = select(PullRequest).where(PullRequest.build_id == build_id)
        return (await session.scalars(query)).one()


async def test_review_comments_are_listed_a_page_at_a_time_as_github_shows_them(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    _, pull = await published(settings, store, sessions, github)
    assert pull.number is not None
    double = github.double
    root = double.add_review_comment(REPOSITORY, pull.number, "Rename sep.", line=2)
    reply = double.add_review_comment(REPOSITORY, pull.number, "Why?", "bob", root["id"])
    # A reply to a reply answers the thread's first comment, as on GitHub.
    again = double.add_review_comment(REPOSITORY, pull.number, "Clarity.", in_reply_to=reply["id"])

    app = app_of(github)
    async with await app.client(github.installation_id) as gh:
        first = await gh.rest.pulls.async_list_review_comments("acme", "slugs", 1, per_page=2)
        second = await gh.rest.pulls.async_list_review_comments(
            "acme", "slugs", 1, per_page=2, page=2
        )
        shown = (await gh.rest.pulls.async_get("acme", "slugs", 1)).parsed_data

    listed = [*first.parsed_data, *second.parsed_data]
    assert [c.id for c in listed] == [root["id"], reply["id"], again["id"]]
    assert [c.in_reply_to_id for c in listed[1:]] == [root["id"], root["id"]]
    assert listed[0].user is not None and listed[0].user.login == "alice"
    assert listed[2].diff_hunk == listed[0].diff_hunk and listed[0].path == "slugkit/__init__.py"
    assert listed[0].diff_hunk.startswith("@@ ") and "return sep.join" in listed[0].diff_hunk
    assert listed[0].commit_id == double.branches(REPOSITORY)[pull.branch]
    for raw in (root, reply, again):  # the API's shape, and a webhook's `comment`
        PullRequestReviewComment.model_validate(raw)
        WebhookPullRequestReviewCommentCreatedPropComment.model_validate(raw)
    assert (shown.review_comments, shown.comments) == (3, 0)
    assert double.counts.comments_created == 0  # people's review comments are not our replies


async def test_feedback_is_gathered_with_its_whole_thread_in_order(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    build_id, pull = await published(settings, store, sessions, github)
    assert pull.number is not None
    double = github.double
    # A long thread first, so the one asked about is on the second page of GitHub's listing.
    other = double.add_review_comment(
        REPOSITORY, pull.number, "Tests?", path="tests/test_slugkit.py"
    )
    for n in range(100):
        double.add_review_comment(REPOSITORY, pull.number, f"noise {n}", in_reply_to=other["id"])
    root = double.add_review_comment(REPOSITORY, pull.number, "Rename the sep argument.", line=2)
    double.add_review_comment(REPOSITORY, pull.number, "To what?", "bob", root["id"])
    last = double.add_review_comment(REPOSITORY, pull.number, "separator", in_reply_to=root["id"])
    items = [
        Feedback(
            id=f"github:review-comment:{last['id']}",
            kind="review_comment",
            author="alice",
            body="separator",
            url=last["html_url"],
            comment_id=last["id"],
            in_reply_to=root["id"],
            path="slugkit/__init__.py",
            line=2,
        ),
        Feedback(id="github:issue-comment:9", kind="comment", author="carol", body="And docs."),
    ]
    request = FeedbackRequest(
        build_id=build_id, iteration=1, items=items, pull_request=pull, repository=link_of(github)
    )
    activities = SessionActivities(settings, store, sessions, app_of(github))

    brief = await ActivityEnvironment().run(activities.gather_feedback, request)
    again = await ActivityEnvironment().run(activities.gather_feedback, request)

    assert again == brief and brief.summary == "@alice: separator (+1 more)"
    gathered = await store.for_owner("local").get_json(brief.feedback_ref)
    assert gathered["iteration"] == 1
    first, second = gathered["items"]
    assert (first["kind"], first["path"], first["line"]) == (
        "review_comment",
        "slugkit/__init__.py",
        2,
    )
    thread = first["thread"]
    assert [(c["author"], c["body"]) for c in thread["comments"]] == [
        ("alice", "Rename the sep argument."),
        ("bob", "To what?"),
        ("alice", "separator"),
    ]
    assert thread["diff_hunk"] == root["diff_hunk"] and "return sep.join" in thread["diff_hunk"]
    assert second == {
        "id": "github:issue-comment:9",  # remembered under it (activities/memory.py)
        "kind": "comment",
        "author": "carol",
        "body": "And docs.",
        "url": None,
        "path": None,
        "line": None,
    }
    assert double.counts.requests[COMMENTS] == 4  # two pages, twice


async def test_local_feedback_asks_no_one_and_its_summary_is_one_short_line(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    build_id, pull = await published(settings, store, sessions, None)
    words = "please " * 40
    items = [
        Feedback(id="api:1", kind="api", author="founder", body=f"{words}\nmore lines"),
        Feedback(id="api:2", kind="api", body="second"),
        Feedback(id="api:3", kind="checks", comment_id=5),  # no GitHub to ask: no thread
    ]
    request = FeedbackRequest(build_id=build_id, iteration=2, items=items, pull_request=pull)
    activities = SessionActivities(settings, store, sessions)  # no App on this worker

    brief = await ActivityEnvironment().run(activities.gather_feedback, request)

    assert len(brief.summary) == 120 and brief.summary.startswith("@founder: please please")
    assert brief.summary.endswith("… (+2 more)") and "more lines" not in brief.summary
    gathered = await store.for_owner("local").get_json(brief.feedback_ref)
    assert [i["body"] for i in gathered["items"]] == [items[0].body, "second", ""]
    assert all("thread" not in item for item in gathered["items"])


async def test_an_iteration_is_pushed_over_the_head_and_answered_once(
    settings: Settings,
    store: ArtifactStore,
    sessions: Sessions,
    github: InstalledApp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    build_id, pull = await published(settings, store, sessions, github)
    app = app_of(github)
    activities = SessionActivities(settings, store, sessions, app)
    bare = github.double.repository(REPOSITORY).path
    renamed = await workspace(store, bare, pull.head_sha, RENAMED)
    request = iteration(build_id, pull, renamed, repository=link_of(github))

    result = await run_iteration(activities, request)
    again = await run_iteration(activities, request)
    # The row lost (a crash after the push and the reply): both are found, neither is redone.
    async with sessions() as session:
        await session.execute(delete(ReviewIteration))
        await session.commit()
    recovered = await run_iteration(activities, request)

    assert again == recovered == result and result.pushed
    double = github.double
    assert double.branches(REPOSITORY)[pull.branch] == result.head_sha != pull.head_sha
    assert remotes.head(bare, f"{result.head_sha}^") == pull.head_sha  # one commit, over the head
    assert remotes.tree_of(bare, result.head_sha) == remotes.tree_of(bare, pull.head_sha) | RENAMED
    assert (double.counts.pushes, double.counts.comments_created) == (2, 1)  # publish + iteration
    [reply] = double.comments(REPOSITORY, 1)
    assert result.reply_url is not None and result.reply_url.endswith(
        f"#issuecomment-{reply.comment_id}"
    )
    for expected in (
        "Iteration 1: @alice: rename sep",
        "- https://example.test/acme/slugs/pull/1#discussion_r1",
        "slugkit/__init__.py | 4 ++--",
        "Passed.",
        "3 passed in 0.02s",
        "Renamed everywhere.",
        "$0.0043: 900 input and 120 output tokens",
    ):
        assert expected in reply.body
    assert reply.body.rstrip().endswith(f"<!-- cofounder:build={build_id} iteration=1 -->")
    row = await pull_row(sessions, build_id)
    assert row.head_sha == result.head_sha and "+def slugify(text, separator='-'):" in row.diff
    [recorded] = await rows(sessions, build_id)
    assert (recorded.status, recorded.reply_url, recorded.cost_micro_usd) == (
        "pushed",
        result.reply_url,
        4_321,
    )
    token = await app.token(github.installation_id)
    header = (await app.git_env(github.installation_id))["GIT_CONFIG_VALUE_0"]
    for secret in (token, header):
        assert secret not in reply.body and secret not in caplog.text


async def test_a_reply_whose_answer_was_lost_is_found_by_its_marker(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    build_id, pull = await published(settings, store, sessions, github)
    activities = SessionActivities(settings, store, sessions, app_of(github))
    double = github.double
    renamed = await workspace(store, double.repository(REPOSITORY).path, pull.head_sha, RENAMED)
    request = iteration(build_id, pull, renamed, repository=link_of(github))
    double.hold_answer(POST_REPLY, 3)  # posted on GitHub, then no answer for a while

    env = ActivityEnvironment()
    first = asyncio.create_task(env.run(activities.publish_iteration, request))
    while double.counts.comments_created == 0:
        await asyncio.sleep(0.02)
    env.cancel()  # the attempt timed out, as Temporal would have it
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await rows(sessions, build_id) == []

    result = await run_iteration(activities, request)

    [reply] = double.comments(REPOSITORY, 1)
    assert result.reply_url is not None and result.reply_url.endswith(f"-{reply.comment_id}")
    assert (double.counts.comments_created, double.counts.pushes) == (1, 2)
    assert double.counts.requests[POST_REPLY] == 1


async def test_an_unchanged_tree_pushes_nothing_but_still_replies(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    build_id, pull = await published(settings, store, sessions, github)
    bare = github.double.repository(REPOSITORY).path
    same = await workspace(store, bare, pull.head_sha)
    activities = SessionActivities(settings, store, sessions, app_of(github))
    request = iteration(build_id, pull, same, repository=link_of(github))

    result = await run_iteration(activities, request)

    assert (result.pushed, result.head_sha) == (False, pull.head_sha)
    assert github.double.counts.pushes == 1  # the first pass's
    assert github.double.branches(REPOSITORY)[pull.branch] == pull.head_sha
    [reply] = github.double.comments(REPOSITORY, 1)
    assert "No change: the branch already holds this code" in reply.body
    [recorded] = await rows(sessions, build_id)
    assert (recorded.status, recorded.head_sha) == ("unchanged", pull.head_sha)
    assert (await pull_row(sessions, build_id)).head_sha == pull.head_sha


async def test_a_failed_iteration_replies_with_its_error_and_pushes_nothing(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    build_id, pull = await published(settings, store, sessions, github)
    activities = SessionActivities(settings, store, sessions, app_of(github))
    request = iteration(
        build_id,
        pull,
        None,
        repository=link_of(github),
        passed=False,
        test_summary="1 failed, 2 passed",
        error="the tests still failed after 3 attempts",
    )

    result = await run_iteration(activities, request)

    assert (result.pushed, result.head_sha) == (False, pull.head_sha)
    assert github.double.counts.pushes == 1
    [reply] = github.double.comments(REPOSITORY, 1)
    assert "Nothing was pushed" in reply.body and "still failed after 3 attempts" in reply.body
    assert "Failed." in reply.body and "1 failed, 2 passed" in reply.body
    [recorded] = await rows(sessions, build_id)
    assert (recorded.status, recorded.error) == ("failed", request.error)


async def test_a_branch_moved_under_the_iteration_is_refused_for_good(
    settings: Settings, store: ArtifactStore, sessions: Sessions, github: InstalledApp
) -> None:
    build_id, pull = await published(settings, store, sessions, github)
    bare = github.double.repository(REPOSITORY).path
    theirs = commit_files(bare, pull.branch, {"mine.txt": b"a person's push\n"}, "Mine")
    app = app_of(github)
    activities = SessionActivities(settings, store, sessions, app)
    renamed = await workspace(store, bare, pull.head_sha, RENAMED)
    request = iteration(build_id, pull, renamed, repository=link_of(github))

    with pytest.raises(ApplicationError) as refused:
        await run_iteration(activities, request)

    assert (refused.value.type, refused.value.non_retryable) == ("BranchMoved", True)
    assert f"is at {theirs[:12]}" in str(refused.value)
    assert github.double.branches(REPOSITORY)[pull.branch] == theirs  # their work stands
    assert github.double.counts.comments_created == 0 and await rows(sessions, build_id) == []
    token = await app.token(github.installation_id)
    assert token not in str(refused.value) and token not in repr(refused.value.__cause__)


async def test_local_iterations_follow_the_branch_and_are_recorded_once_each(
    settings: Settings, store: ArtifactStore, sessions: Sessions
) -> None:
    build_id, pull = await published(settings, store, sessions, None)
    activities = SessionActivities(settings, store, sessions)
    remote = settings.git_remote("local", "demo")
    first = iteration(build_id, pull, await workspace(store, remote, pull.head_sha, RENAMED))

    one = await run_iteration(activities, first)
    assert await run_iteration(activities, first) == one
    moved = pull.model_copy(update={"head_sha": one.head_sha})
    notes = await workspace(store, remote, one.head_sha, {"NOTES.md": b"n\n"})
    two = await run_iteration(activities, iteration(build_id, moved, notes, iteration=2))

    assert remotes.head(remote, pull.branch) == two.head_sha
    assert (
        remotes.git(remote, "rev-list", "--count", f"{pull.head_sha}..{two.head_sha}").strip()
        == "2"
    )
    assert remotes.head(remote, f"{two.head_sha}^") == one.head_sha
    message = remotes.git(remote, "log", "-1", "--format=%s%n%n%b%cI", one.head_sha)
    assert message.strip().split("\n") == [
        "Iteration 1: @alice: rename sep",
        "",
        f"Build {build_id}",
        "2026-01-01T00:00:00+00:00",
    ]
    assert (one.reply_url, two.reply_url) == (None, None)
    assert (await pull_row(sessions, build_id)).head_sha == two.head_sha
    recorded = await rows(sessions, build_id)
    assert [(r.number, r.status, r.head_sha) for r in recorded] == [
        (1, "pushed", one.head_sha),
        (2, "pushed", two.head_sha),
    ]
    assert (
        "<!-- cofounder:build=" in recorded[0].reply_body and "NOTES.md" in recorded[1].reply_body
    )
    with pytest.raises(IntegrityError):  # one row per build and iteration, whoever writes it
        async with sessions() as session:
            copy = ReviewIteration(
                build_id=build_id,
                number=1,
                status="pushed",
                feedback_summary="",
                head_sha=one.head_sha,
                reply_body="",
            )
            session.add(copy)
            await session.commit()
