"""One durable session per pull request on GitHub, end to end in the offline stack: a build
opens its pull request on the double, two review comments arrive by webhook, each is one
iteration (a commit on the branch and a reply on the pull request), and the merge ends it."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.github_fixtures import InstalledApp, deliver
from tests.helpers import api_status
from tests.test_github_builds import GOAL, REPOSITORY, linked, merged_event  # noqa: F401 (a fixture)

ASKS = ["Name the max_length parameter in the README", "Mention that words are never cut"]


def comment_event(github: InstalledApp, comment: dict[str, Any], number: int) -> dict[str, Any]:
    """The `pull_request_review_comment` webhook GitHub sends for `comment`."""
    return {
        "action": "created",
        "comment": comment,
        "pull_request": {"number": number, "state": "open"},
        "repository": {"id": 7, "full_name": REPOSITORY},
        "installation": {"id": github.installation_id},
        "sender": comment["user"],
    }


async def iterations_done(http: httpx.AsyncClient, build_id: str, count: int) -> dict[str, Any]:
    """The build once `count` iterations are published and it is back in review."""
    for _ in range(1200):
        build = await api_status(http, build_id, "in_review", timeout=120)
        if len([it for it in build["iterations"] if it["status"] != "running"]) >= count:
            return build
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} iterations never done")


async def test_review_comments_on_github_are_iterations_until_the_merge(
    linked: httpx.AsyncClient,  # noqa: F811
    github: InstalledApp,
    env: WorkflowEnvironment,
) -> None:
    claimed = await linked.post(f"/api/github/installations/{github.installation_id}/claim")
    assert claimed.status_code == 200, claimed.text
    link = await linked.put("/api/projects/slugs/repository", json={"repository": REPOSITORY})
    assert link.status_code == 200, link.text
    started = (await linked.post("/api/builds", json={"project": "slugs", "goal": GOAL})).json()
    build_id = started["id"]
    opened = await api_status(linked, build_id, "in_review", timeout=120)
    [pull] = github.double.pulls(REPOSITORY)
    assert opened["pull_request"]["head_sha"] == pull.head_sha
    first_head = pull.head_sha

    # Two review comments by a collaborator, one after the other, each through its webhook.
    for number, ask in enumerate(ASKS, start=1):
        comment = github.double.add_review_comment(REPOSITORY, pull.number, ask, login="maria")
        answer = await deliver(
            linked, "pull_request_review_comment", comment_event(github, comment, pull.number)
        )
        assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text
        build = await iterations_done(linked, build_id, number)

    iterations = build["iterations"]
    assert [(it["number"], it["status"]) for it in iterations] == [(1, "pushed"), (2, "pushed")]
    # Two replies on the pull request, one per iteration, each linking its own page.
    replies = github.double.comments(REPOSITORY, pull.number)
    assert len(replies) == 2 and github.double.counts.comments_created == 2
    for iteration, reply in zip(iterations, replies, strict=True):
        assert iteration["reply_url"].endswith(
            f"/pull/{pull.number}#issuecomment-{reply.comment_id}"
        )
    for ask, reply in zip(ASKS, replies, strict=True):
        assert ask in reply.body and "cofounder:build=" in reply.body
    # Two commits on the same branch over the first; still one pull request and one branch.
    head = github.double.branches(REPOSITORY)[pull.head]
    assert head == iterations[-1]["head_sha"] == build["pull_request"]["head_sha"] != first_head
    assert github.double.counts.pulls_created == 1
    assert github.double.counts.branches_created[REPOSITORY] == 1
    where = github.double.repository(REPOSITORY).path
    readme = subprocess.run(
        ["git", "--git-dir", str(where), "show", f"{head}:README.md"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert all(f"- {ask}" in readme for ask in ASKS)

    # A review of three comments, its webhooks all at once: one iteration answers them together.
    review_id = 4321
    comments = [
        github.double.add_review_comment(
            REPOSITORY, pull.number, f"Review point {n}", login="maria", review_id=review_id
        )
        for n in (1, 2, 3)
    ]
    submitted = {
        "action": "submitted",
        "review": {
            "id": review_id,
            "body": "Three small things.",
            "state": "changes_requested",
            "html_url": f"https://github.com/{REPOSITORY}/pull/{pull.number}#pullrequestreview-1",
            "user": {"login": "maria", "type": "User"},
            "author_association": "OWNER",
        },
        "pull_request": {"number": pull.number, "state": "open"},
        "repository": {"id": 7, "full_name": REPOSITORY},
        "installation": {"id": github.installation_id},
        "sender": {"login": "maria", "type": "User"},
    }
    answers = await asyncio.gather(
        deliver(linked, "pull_request_review", submitted),
        *(
            deliver(linked, "pull_request_review_comment", comment_event(github, c, pull.number))
            for c in comments
        ),
    )
    assert [a.json()["outcome"] for a in answers] == ["applied"] * 4
    build = await iterations_done(linked, build_id, 3)
    assert len(build["iterations"]) == 3 and build["queued_feedback"] == 0
    assert build["iterations"][2]["feedback"].endswith("(+3 more)")  # the review and its 3
    assert github.double.counts.comments_created == 3  # one reply for the whole review
    readme = subprocess.run(
        ["git", "--git-dir", str(where), "show", f"{build['pull_request']['head_sha']}:README.md"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert all(f"- Review point {n}" in readme for n in (1, 2, 3))

    # Merged on GitHub: the webhook ends the session.
    sha = github.double.merge_pull(REPOSITORY, pull.number)
    closed = merged_event(github, pull.number, sha)
    assert (await deliver(linked, "pull_request", closed)).json()["outcome"] == "applied"
    final = await env.client.get_workflow_handle(started["workflow_id"]).result()
    assert final["status"] == "merged" and final["iteration"] == 3
