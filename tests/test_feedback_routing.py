"""Feedback reaches the build whose pull request it is about: GitHub's webhooks and the API
signal the build's workflow, once per delivery, and only for people who may steer it.

The build's workflow is `RecordingBuild`, a stand-in registered under the real workflow's name
that keeps every signal it gets; the API signals it through the real workflow's typed methods.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest_asyncio
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.deps import User, get_current_user
from api.main import create_app
from cofounder.artifacts import ArtifactStore
from cofounder.db import Build, Project, PullRequest, WebhookDelivery
from cofounder.payloads import FEEDBACK_LIMIT, Feedback, PullRequestClosed
from cofounder.settings import Settings
from tests.conftest import free_port
from tests.github_fixtures import SECRET, deliver
from tests.helpers import count, insert_build
from tests.remotes import commit_to_main, head, tree_of
from tests.test_merge import BASE, published
from workflows.build import WORKFLOW_NAME

Sessions = async_sessionmaker[AsyncSession]
REPOSITORY = {"id": 7, "name": "shop", "full_name": "acme/shop", "private": True}
HEAD = "9fceb02d0ae598e95dc970b74767f19372d61af8"


class Heard(BaseModel):
    feedback: list[Feedback] = Field(default_factory=list)
    closed: list[PullRequestClosed] = Field(default_factory=list)


@workflow.defn(name=WORKFLOW_NAME)
class RecordingBuild:
    """A build in review: it keeps what it is told and ends when its pull request closes."""

    def __init__(self) -> None:
        self._heard = Heard()

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: bool(self._heard.closed))

    @workflow.signal
    def feedback(self, item: Feedback) -> None:
        self._heard.feedback.append(item)

    @workflow.signal
    def pull_request_closed(self, closed: PullRequestClosed) -> None:
        self._heard.closed.append(closed)

    @workflow.query
    def heard(self) -> Heard:
        return self._heard


@pytest_asyncio.fixture
async def recorder(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    # Unsandboxed: this module imports the whole API, which the sandbox would re-import.
    worker = Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[RecordingBuild],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        yield worker


@asynccontextmanager
async def api(
    settings: Settings, client: Client, owner: str = "local", **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the App's webhook secret (and `changes` to its settings), as `owner`."""
    changed = settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET), **changes})
    served = create_app(changed, client=client)
    served.dependency_overrides[get_current_user] = lambda: User(id=owner)
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


@pytest_asyncio.fixture
async def front(
    settings: Settings, env: WorkflowEnvironment, sessions: Sessions, recorder: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    async with api(settings, env.client) as http:
        yield http


async def build_in_review(
    sessions: Sessions,
    env: WorkflowEnvironment,
    settings: Settings,
    number: int = 7,
    provider: str = "github",
    running: bool = True,
) -> str:
    """A build whose pull request is open (on acme/shop, or local), its workflow in review."""
    build_id = await insert_build(sessions, project="shop")
    async with sessions() as session:
        build = await session.get(Build, build_id)
        assert build is not None
        build.status = "in_review"
        project = await session.get(Project, build.project_id)
        assert project is not None
        project.repository = REPOSITORY["full_name"] if provider == "github" else None
        url = f"https://github.com/acme/shop/pull/{number}" if provider == "github" else None
        pr = PullRequest(build_id=build_id, project_id=project.id, title="Slugs", body="")
        pr.base, pr.branch, pr.head_sha, pr.diff = "main", f"cofounder/{build_id}", HEAD, ""
        pr.provider, pr.number, pr.url = provider, number if url else None, url
        session.add(pr)
        await session.commit()
    if running:
        await record(env, settings, build_id)
    return build_id


async def record(env: WorkflowEnvironment, settings: Settings, build_id: str) -> None:
    """The build's workflow: one that records what it is told."""
    queue = settings.task_queue
    await env.client.start_workflow(RecordingBuild.run, id=f"build-{build_id}", task_queue=queue)


async def heard(
    env: WorkflowEnvironment, build_id: str, feedback: int = 0, closed: int = 0
) -> Heard:
    """What the build was told, once it holds at least this much (signals arrive in order)."""
    handle = env.client.get_workflow_handle(f"build-{build_id}")
    deadline = time.monotonic() + 10
    while True:
        told = await handle.query(RecordingBuild.heard)
        if len(told.feedback) >= feedback and len(told.closed) >= closed:
            return told
        assert time.monotonic() < deadline, f"the build heard only {told}"
        await asyncio.sleep(0.05)


def user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": sum(map(ord, login)), "type": kind}


def issue_comment(
    comment_id: int, body: str = "Please handle emoji too.", number: int = 7, **who: Any
) -> dict[str, Any]:
    login, kind = who.pop("login", "maria"), who.pop("kind", "User")
    return {
        "action": "created",
        "issue": {
            "number": number,
            "title": "Slugs",
            "state": "open",
            "pull_request": {"html_url": f"https://github.com/acme/shop/pull/{number}"},
        },
        "comment": {
            "id": comment_id,
            "html_url": f"https://github.com/acme/shop/pull/{number}#issuecomment-{comment_id}",
            "body": body,
            "user": user(login, kind),
            "author_association": "COLLABORATOR",
            "performed_via_github_app": None,
        }
        | who,
        "repository": REPOSITORY,
        "sender": user(login, kind),
    }


def review_comment(comment_id: int, review_id: int = 900, **fields: Any) -> dict[str, Any]:
    comment = {
        "id": comment_id,
        "pull_request_review_id": review_id,
        "path": "slugkit/__init__.py",
        "diff_hunk": "@@ -1,3 +1,4 @@",
        "commit_id": HEAD,
        "line": 12,
        "original_line": 12,
        "side": "RIGHT",
        "body": f"Comment {comment_id}: this strips too much.",
        "html_url": f"https://github.com/acme/shop/pull/7#discussion_r{comment_id}",
        "user": user("maria"),
        "author_association": "COLLABORATOR",
    }
    return {
        "action": "created",
        "comment": comment | fields,
        "pull_request": {"number": 7, "state": "open", "head": {"sha": HEAD}},
        "repository": REPOSITORY,
        "sender": user("maria"),
    }


def review(review_id: int, body: str | None, state: str = "changes_requested") -> dict[str, Any]:
    return {
        "action": "submitted",
        "review": {
            "id": review_id,
            "body": body,
            "state": state,
            "commit_id": HEAD,
            "html_url": f"https://github.com/acme/shop/pull/7#pullrequestreview-{review_id}",
            "user": user("maria"),
            "author_association": "OWNER",
        },
        "pull_request": {"number": 7, "state": "open", "head": {"sha": HEAD}},
        "repository": REPOSITORY,
        "sender": user("maria"),
    }


def check_suite(suite_id: int, conclusion: str = "failure", sha: str = HEAD) -> dict[str, Any]:
    return {
        "action": "completed",
        "check_suite": {
            "id": suite_id,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "updated_at": "2026-11-26T01:00:00Z",
            "url": f"https://api.github.com/repos/acme/shop/check-suites/{suite_id}",
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
            "pull_requests": [{"number": 7, "head": {"sha": sha}, "base": {"ref": "main"}}],
        },
        "repository": REPOSITORY,
        "sender": user("github-actions[bot]", "Bot"),
    }


async def outcome(front: httpx.AsyncClient, event: str, payload: Any, **kw: Any) -> str:
    answer = await deliver(front, event, payload, **kw)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outcome"])


# --- GitHub's webhooks ---------------------------------------------------------------------------


async def test_a_collaborators_review_comments_reach_the_build_with_their_lines(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    reply = review_comment(502, in_reply_to_id=501, line=None, original_line=10)
    assert await outcome(front, "pull_request_review_comment", review_comment(501)) == "applied"
    assert await outcome(front, "pull_request_review_comment", reply) == "applied"

    first, second = (await heard(env, build_id, feedback=2)).feedback
    assert first == Feedback(
        id="github:review-comment:501",
        kind="review_comment",
        author="maria",
        body="Comment 501: this strips too much.",
        url="https://github.com/acme/shop/pull/7#discussion_r501",
        group="github:review:900",
        comment_id=501,
        path="slugkit/__init__.py",
        line=12,
    )
    # A reply on a line the branch has since changed: GitHub keeps only its original line.
    assert (second.in_reply_to, second.line, second.group) == (501, 10, "github:review:900")


async def test_a_comment_on_the_pull_request_is_feedback_one_on_an_issue_is_not(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    on_issue = issue_comment(300)
    del on_issue["issue"]["pull_request"]
    assert await outcome(front, "issue_comment", on_issue) == "ignored"
    long = "x" * (FEEDBACK_LIMIT + 10)
    assert await outcome(front, "issue_comment", issue_comment(301, body=long)) == "applied"

    [item] = (await heard(env, build_id, feedback=1)).feedback
    assert (item.id, item.kind, item.author) == ("github:issue-comment:301", "comment", "maria")
    assert item.url == "https://github.com/acme/shop/pull/7#issuecomment-301"
    assert item.body == "x" * FEEDBACK_LIMIT  # cut where GitHub's own limit is


async def test_bots_apps_drive_by_commenters_and_empty_reviews_do_not_steer_a_build(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    passed_over = [
        # Bots, our own App's replies among them, even when the repository counts them in.
        ("issue_comment", issue_comment(1, login="cofounder-dev[bot]", kind="Bot")),
        ("issue_comment", issue_comment(2, login="renovate[bot]", kind="Bot")),
        ("issue_comment", issue_comment(3, performed_via_github_app={"slug": "linear"})),
        ("issue_comment", issue_comment(4, login="stranger", author_association="NONE")),
        ("issue_comment", issue_comment(5, login="passer-by", author_association="CONTRIBUTOR")),
        ("pull_request_review_comment", review_comment(6, author_association="NONE")),
        ("pull_request_review", review(7, None, state="approved")),
        ("pull_request_review", review(8, "", state="commented")),
    ]
    for event, payload in passed_over:
        assert await outcome(front, event, payload) == "ignored", payload
    assert await outcome(front, "issue_comment", issue_comment(9)) == "applied"

    # Signals arrive in order: had any of the first been sent, it would be heard before this.
    assert [item.id for item in (await heard(env, build_id, 1)).feedback] == [
        "github:issue-comment:9"
    ]
    assert await count(sessions, WebhookDelivery) == len(passed_over) + 1


async def test_a_replayed_delivery_signals_once(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    assert await outcome(front, "issue_comment", issue_comment(10), delivery="d-1") == "applied"
    assert await outcome(front, "issue_comment", issue_comment(10), delivery="d-1") == "duplicate"
    assert await outcome(front, "issue_comment", issue_comment(11)) == "applied"

    told = await heard(env, build_id, feedback=2)
    assert [item.id for item in told.feedback] == [
        "github:issue-comment:10",
        "github:issue-comment:11",
    ]


async def test_a_review_and_its_comments_delivered_together_share_one_group(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    deliveries = [deliver(front, "pull_request_review", review(900, "Close; see my comments."))]
    deliveries += [
        deliver(front, "pull_request_review_comment", review_comment(n)) for n in (1, 2, 3)
    ]

    answers = await asyncio.gather(*deliveries)

    assert [a.json()["outcome"] for a in answers] == ["applied"] * 4
    told = (await heard(env, build_id, feedback=4)).feedback
    assert {item.group for item in told} == {"github:review:900"}
    [submitted] = [item for item in told if item.kind == "review"]
    assert (submitted.id, submitted.body) == (
        "github:review:900:submitted",
        "Close; see my comments.",
    )
    assert sorted(item.comment_id or 0 for item in told if item.kind == "review_comment") == [
        1,
        2,
        3,
    ]


async def test_a_pull_request_merged_on_github_ends_the_session(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    closed = {
        "action": "closed",
        "number": 7,
        "pull_request": {"number": 7, "state": "closed", "merged": True, "merge_commit_sha": HEAD},
        "repository": REPOSITORY,
        "sender": user("maria"),
    }
    assert await outcome(front, "pull_request", closed) == "applied"

    assert (await heard(env, build_id, closed=1)).closed == [
        PullRequestClosed(merged=True, by="maria")
    ]
    pr = (await front.get(f"/api/builds/{build_id}/pull-request")).json()
    assert (pr["state"], pr["merge_commit_sha"]) == ("merged", HEAD)


async def test_an_unsigned_or_forged_delivery_reaches_no_build(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    unsigned = await deliver(front, "issue_comment", issue_comment(20), sign=False)
    forged = await deliver(front, "issue_comment", issue_comment(21), secret="guessed")
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    assert await outcome(front, "issue_comment", issue_comment(22)) == "applied"

    told = await heard(env, build_id, feedback=1)
    assert [item.id for item in told.feedback] == ["github:issue-comment:22"]
    assert await count(sessions, WebhookDelivery) == 1


async def test_temporal_unreachable_is_503_and_the_redelivery_applies_it(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    # A client of a closed port: it fails only when used, as one whose server went away.
    address = f"127.0.0.1:{free_port()}"
    unreachable = await Client.connect(address, data_converter=pydantic_data_converter, lazy=True)
    async with api(settings, unreachable) as cut_off:
        refused = await deliver(cut_off, "issue_comment", issue_comment(30), delivery="d-30")
    assert refused.status_code == 503 and "Temporal" in refused.json()["detail"]
    assert await count(sessions, WebhookDelivery) == 0  # so GitHub's retry is not a duplicate

    assert await outcome(front, "issue_comment", issue_comment(30), delivery="d-30") == "applied"
    [item] = (await heard(env, build_id, feedback=1)).feedback
    assert item.id == "github:issue-comment:30"


async def test_feedback_no_running_build_takes_is_recorded_and_ignored(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    await build_in_review(sessions, env, settings, number=8, running=False)  # its workflow ended
    for number in (8, 99):  # 99: a pull request no build opened
        assert await outcome(front, "issue_comment", issue_comment(40 + number, number=number)) == (
            "ignored"
        )
    assert await count(sessions, WebhookDelivery) == 2  # handled: GitHub does not retry them


async def test_failing_checks_are_feedback_only_when_asked_for(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment, recorder: Worker
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    async with api(settings, env.client) as off:
        assert await outcome(off, "check_suite", check_suite(50)) == "ignored"
    async with api(settings, env.client, github_iterate_on_failing_checks=True) as on:
        assert await outcome(on, "check_suite", check_suite(51, "success")) == "ignored"
        assert await outcome(on, "check_suite", check_suite(52, sha="0" * 40)) == "ignored"
        assert await outcome(on, "check_suite", check_suite(53, "timed_out")) == "applied"

    [item] = (await heard(env, build_id, feedback=1)).feedback
    url = "https://api.github.com/repos/acme/shop/check-suites/53"
    suite = "github:check-suite:53:2026-11-26T01:00:00Z"  # a re-run completes at another time
    assert (item.id, item.kind, item.url) == (suite, "checks", url)
    assert all(part in item.body for part in ("GitHub Actions", "timed_out", HEAD, url))


# --- the API -------------------------------------------------------------------------------------


FINE = {"body": "Also accept underscores as separators."}


async def test_feedback_through_the_api_reaches_the_build(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings, provider="local")
    url = f"/api/builds/{build_id}/feedback"
    keyed = [await front.post(url, json=FINE, headers={"Idempotency-Key": "k-1"}) for _ in range(2)]
    plain = await front.post(url, json={"body": "And trim them."})

    assert [answer.status_code for answer in [*keyed, plain]] == [202, 202, 202]
    assert (plain.json()["id"], plain.json()["status"]) == (build_id, "in_review")
    first, again, other = (await heard(env, build_id, feedback=3)).feedback
    assert first == Feedback(id="api:k-1", kind="api", author="local", body=FINE["body"])
    assert again == first  # the same id: the workflow keeps it once
    assert other.id.startswith("api:") and len(other.id) == 4 + 32 and other.id != first.id


async def test_feedback_is_refused_when_no_session_can_take_it(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings, provider="local")
    async with api(settings, env.client, owner="someone-else") as other:
        theirs = await other.post(f"/api/builds/{build_id}/feedback", json=FINE)
    assert (theirs.status_code, theirs.json()) == (404, {"detail": f"build {build_id} not found"})
    ended = await build_in_review(sessions, env, settings, provider="local", running=False)
    async with sessions() as session:
        await session.execute(update(Build).where(Build.id == ended).values(status="merged"))
        await session.commit()
    gone = await build_in_review(sessions, env, settings, provider="local", running=False)
    queued = await insert_build(sessions)
    conflicts = {ended: "already merged", gone: "has ended", queued: "no pull request yet"}
    for refused, reason in conflicts.items():
        answer = await front.post(f"/api/builds/{refused}/feedback", json=FINE)
        assert answer.status_code == 409 and reason in answer.json()["detail"], answer.text
    url = f"/api/builds/{build_id}/feedback"
    for body in ({"body": ""}, {"body": " \n"}, {}, FINE | {"extra": 1}, {"body": "x" * 65_537}):
        assert (await front.post(url, json=body)).status_code == 422, body
    spaced = await front.post(url, json=FINE, headers={"Idempotency-Key": "two words"})
    assert spaced.status_code == 422

    assert (await front.post(url, json=FINE)).status_code == 202
    assert len((await heard(env, build_id, feedback=1)).feedback) == 1  # only the last one


async def test_merging_or_closing_a_local_pull_request_ends_the_session(
    front: httpx.AsyncClient,
    settings: Settings,
    store: ArtifactStore,
    sessions: Sessions,
    env: WorkflowEnvironment,
) -> None:
    await commit_to_main(settings, "local", "demo", BASE)
    kept = await published(settings, store, sessions, {"one.py": b"ONE = 1\n"})
    dropped = await published(settings, store, sessions, {"two.py": b"TWO = 2\n"})
    for build_id in (kept, dropped):
        await record(env, settings, build_id)

    merged = await front.post(f"/api/builds/{kept}/pull-request/merge")
    closed = await front.post(f"/api/builds/{dropped}/pull-request/close")

    assert (merged.status_code, merged.json()["state"]) == (200, "merged")
    assert (closed.status_code, closed.json()["state"]) == (200, "closed")
    told = [(await heard(env, build_id, closed=1)).closed for build_id in (kept, dropped)]
    assert told == [
        [PullRequestClosed(merged=True, by="local")],
        [PullRequestClosed(merged=False, by="local")],
    ]
    again = await front.post(f"/api/builds/{dropped}/pull-request/close")
    assert (again.status_code, again.json()) == (200, closed.json())
    remote = settings.git_remote("local", "demo")
    main = head(remote)
    for path, detail in (
        (f"{kept}/pull-request/close", "is merged; it cannot be closed"),
        (f"{dropped}/pull-request/merge", "is closed; it cannot be merged"),
    ):
        answer = await front.post(f"/api/builds/{path}")
        assert answer.status_code == 409 and detail in answer.json()["detail"]
    assert head(remote) == main and tree_of(remote, "main") == BASE | {"one.py": b"ONE = 1\n"}


async def test_a_pull_request_on_github_is_closed_there(
    front: httpx.AsyncClient, sessions: Sessions, env: WorkflowEnvironment, settings: Settings
) -> None:
    build_id = await build_in_review(sessions, env, settings)
    refused = await front.post(f"/api/builds/{build_id}/pull-request/close")
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith(
        "close it on GitHub (https://github.com/acme/shop/pull/7)"
    )
    unpublished = await insert_build(sessions)
    missing = await front.post(f"/api/builds/{unpublished}/pull-request/close")
    assert missing.status_code == 409 and "has no pull request" in missing.json()["detail"]
    pr = (await front.get(f"/api/builds/{build_id}/pull-request")).json()
    assert pr["state"] == "open"
