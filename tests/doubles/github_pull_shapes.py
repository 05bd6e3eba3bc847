"""The JSON of pull requests, issue comments and review comments in the GitHub double, as
githubkit's `PullRequest`, `PullRequestSimple`, `IssueComment` and `PullRequestReviewComment`
models (and webhook payloads) read them."""

from __future__ import annotations

from typing import Any

from tests.doubles.github_repos import Comparison
from tests.doubles.github_shapes import Shapes, timestamp
from tests.doubles.github_state import Comment, Pull, Repository, ReviewComment

REACTIONS = ["+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"]


def pull_links(shapes: Shapes, repo: Repository, pull: Pull, head_sha: str) -> dict[str, str]:
    """The pull request's URLs, as its `_links` name them."""
    api = f"{shapes.api}/repos/{repo.full_name}"
    url, issue = f"{api}/pulls/{pull.number}", f"{api}/issues/{pull.number}"
    return {
        "self": url,
        "html": f"{shapes.web}/{repo.full_name}/pull/{pull.number}",
        "issue": issue,
        "comments": f"{issue}/comments",
        "review_comments": f"{url}/comments",
        "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{url}/commits",
        "statuses": f"{api}/statuses/{head_sha}",
    }


def pull_json(
    shapes: Shapes,
    repo_json: dict[str, Any],
    repo: Repository,
    pull: Pull,
    compared: Comparison,
    comments: int,
    review_comments: int = 0,
) -> dict[str, Any]:
    """A pull request of `repo` (whose JSON is `repo_json`), opened by the App's bot."""
    links = pull_links(shapes, repo, pull, compared.head_sha)

    def side(branch: str, sha: str) -> dict[str, Any]:
        label = f"{repo.owner}:{branch}"
        user = repo_json["owner"]
        return {"label": label, "ref": branch, "sha": sha, "user": user, "repo": repo_json}

    return {
        "url": links["self"],
        "id": pull.pull_id,
        "node_id": f"PR_{pull.pull_id}",
        "html_url": links["html"],
        "diff_url": f"{links['html']}.diff",
        "patch_url": f"{links['html']}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": shapes.bot(),
        "body": pull.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": timestamp(pull.created_at),
        "updated_at": timestamp(pull.updated_at),
        "closed_at": timestamp(pull.closed_at),
        "merged_at": timestamp(pull.merged_at),
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(pull.head, compared.head_sha),
        "base": side(pull.base, compared.base_sha),
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": "NONE",
        "auto_merge": None,
        "draft": False,
        "merged": pull.merged_at is not None,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": repo_json["owner"] if pull.merged_at is not None else None,
        "comments": comments,
        "review_comments": review_comments,
        "maintainer_can_modify": False,
        "commits": compared.commits,
        "additions": compared.additions,
        "deletions": compared.deletions,
        "changed_files": compared.changed_files,
    }


def comment_json(shapes: Shapes, repo: Repository, comment: Comment) -> dict[str, Any]:
    """A comment of the App's bot on the conversation of pull request `comment.number`."""
    api = f"{shapes.api}/repos/{repo.full_name}"
    url = f"{api}/issues/comments/{comment.comment_id}"
    html = f"{shapes.web}/{repo.full_name}/pull/{comment.number}"
    return {
        "id": comment.comment_id,
        "node_id": f"IC_{comment.comment_id}",
        "url": url,
        "html_url": f"{html}#issuecomment-{comment.comment_id}",
        "body": comment.body,
        "user": shapes.bot(),
        "created_at": timestamp(comment.created_at),
        "updated_at": timestamp(comment.created_at),
        "issue_url": f"{api}/issues/{comment.number}",
        "author_association": "NONE",
        "reactions": {"url": f"{url}/reactions", "total_count": 0} | dict.fromkeys(REACTIONS, 0),
    }


def review_comment_json(shapes: Shapes, repo: Repository, comment: ReviewComment) -> dict[str, Any]:
    """A person's comment on a line of pull request `comment.number`'s diff: what
    `GET /pulls/{number}/comments` lists, and the `comment` of a `pull_request_review_comment`
    webhook."""
    api = f"{shapes.api}/repos/{repo.full_name}"
    url = f"{api}/pulls/comments/{comment.comment_id}"
    html = f"{shapes.web}/{repo.full_name}/pull/{comment.number}#discussion_r{comment.comment_id}"
    pull_url = f"{api}/pulls/{comment.number}"
    links = {"self": url, "html": html, "pull_request": pull_url}
    # The line's index in the diff below the hunk's header.
    position = max(len(comment.diff_hunk.splitlines()) - 1, 1)
    answers = {} if comment.in_reply_to is None else {"in_reply_to_id": comment.in_reply_to}
    return answers | {
        "url": url,
        "pull_request_review_id": comment.review_id,
        "id": comment.comment_id,
        "node_id": f"PRRC_{comment.comment_id}",
        "diff_hunk": comment.diff_hunk,
        "path": comment.path,
        "position": position,
        "original_position": position,
        "commit_id": comment.commit_id,
        "original_commit_id": comment.commit_id,
        "user": shapes.user(comment.login, comment.user_id, "User"),
        "body": comment.body,
        "created_at": timestamp(comment.created_at),
        "updated_at": timestamp(comment.created_at),
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": comment.author_association,
        "_links": {name: {"href": href} for name, href in links.items()},
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": comment.line,
        "original_line": comment.line,
        "side": "RIGHT",
        "subject_type": "line",
        "reactions": {"url": f"{url}/reactions", "total_count": 0} | dict.fromkeys(REACTIONS, 0),
    }
