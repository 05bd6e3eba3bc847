"""A build's review session on GitHub: the review threads its feedback belongs to, the remote
its iterations push to, and one reply on the pull request per iteration, however often retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from githubkit import GitHub, TokenAuthStrategy
from githubkit_schemas.latest.models import IssueComment, PullRequestReviewComment

from activities.github.errors import github_errors
from activities.github.pulls import split

# GitHub's largest page: the fewest requests for a long conversation.
PER_PAGE = 100

Item = TypeVar("Item")


async def all_pages(page: Callable[[int], Awaitable[list[Item]]]) -> list[Item]:
    """Every item of a listing, page after page until one comes back short."""
    items: list[Item] = []
    number = 1
    while True:
        found = await page(number)
        items.extend(found)
        if len(found) < PER_PAGE:
            return items
        number += 1


async def review_comments(
    github: GitHub[TokenAuthStrategy], repository: str, number: int
) -> list[PullRequestReviewComment]:
    """Every review comment of pull request `number`, oldest first."""
    owner, name = split(repository)

    async def page(at: int) -> list[PullRequestReviewComment]:
        async with github_errors(f"reading the review comments of #{number} in {repository}"):
            found = await github.rest.pulls.async_list_review_comments(
                owner, name, number, per_page=PER_PAGE, page=at
            )
        return list(found.parsed_data)

    return await all_pages(page)


def thread_of(
    comments: list[PullRequestReviewComment], comment_id: int, in_reply_to: int | None
) -> dict[str, Any] | None:
    """The conversation review comment `comment_id` is part of: its first comment's place and
    diff hunk, and every comment in it in order; None when GitHub no longer has it."""
    by_id = {comment.id: comment for comment in comments}
    found = by_id.get(comment_id)
    root_id = (_answers(found) or found.id) if found is not None else in_reply_to or comment_id
    root = by_id.get(root_id)
    if root is None:
        return None
    replies = sorted((c for c in comments if _answers(c) == root_id), key=lambda c: c.id)
    return {
        "path": root.path,
        "diff_hunk": root.diff_hunk,
        "comments": [_said(comment) for comment in [root, *replies]],
    }


async def reply_once(
    github: GitHub[TokenAuthStrategy], repository: str, number: int, body: str, marker: str
) -> str:
    """The page of the comment on pull request `number` that ends with `marker`: one an earlier
    attempt posted (its answer may have been lost on the way), or `body`, posted now."""
    owner, name = split(repository)
    for comment in await _issue_comments(github, repository, number):
        if (comment.body or "").rstrip().endswith(marker):
            return comment.html_url
    # Temporal runs one attempt at a time, so nothing else posts between the look and the post.
    async with github_errors(f"replying on pull request #{number} of {repository}"):
        made = await github.rest.issues.async_create_comment(owner, name, number, body=body)
    return made.parsed_data.html_url


async def _issue_comments(
    github: GitHub[TokenAuthStrategy], repository: str, number: int
) -> list[IssueComment]:
    owner, name = split(repository)

    async def page(at: int) -> list[IssueComment]:
        async with github_errors(f"reading the comments of #{number} in {repository}"):
            found = await github.rest.issues.async_list_comments(
                owner, name, number, per_page=PER_PAGE, page=at
            )
        return list(found.parsed_data)

    return await all_pages(page)


def _answers(comment: PullRequestReviewComment) -> int | None:
    """The comment this one replies to (GitHub names the thread's first), if it is a reply."""
    answered = comment.in_reply_to_id
    return answered if isinstance(answered, int) else None


def _said(comment: PullRequestReviewComment) -> dict[str, str]:
    author = comment.user.login if comment.user is not None else "ghost"
    return {"author": author, "body": comment.body}
