"""Pull requests, their conversation comments and the review comments on their diffs in the
GitHub double's REST API.

Branches and commits come from the repository's real bare repository, read when asked, so a
pull request's head follows what was pushed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.doubles.github_pull_shapes import comment_json, pull_json, review_comment_json
from tests.doubles.github_repos import Comparison, branches, compare, git
from tests.doubles.github_rest import json_body, missing, repository_of
from tests.doubles.github_shapes import Shapes, error
from tests.doubles.github_state import Pull, Registry, Repository, ReviewComment


def page_of(items: list[Any], query: QueryParams) -> list[Any]:
    """The page GitHub's `page` and `per_page` (30 by default, at most 100) ask for."""
    per_page = min(int(query.get("per_page", 30)), 100)
    start = (max(int(query.get("page", 1)), 1) - 1) * per_page
    return items[start : start + per_page]


def refusal(repo: Repository, body: dict[str, Any]) -> list[dict[str, str]] | None:
    """Why GitHub would refuse to open this pull request (its 422 `errors`); None if it would not.
    Reads the bare repository, so it blocks."""
    heads = branches(repo.path)
    owner, _, head = str(body.get("head", "")).rpartition(":")
    base = str(body.get("base", ""))
    if (owner and owner != repo.owner) or head not in heads:
        return [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
    if base not in heads:
        return [{"resource": "PullRequest", "field": "base", "code": "invalid"}]
    if any(p.state == "open" and (p.head, p.base) == (head, base) for p in repo.pulls.values()):
        message = f"A pull request already exists for {repo.owner}:{head}."
        return [{"resource": "PullRequest", "code": "custom", "message": message}]
    if compare(repo.path, heads[base], heads[head]).commits == 0:
        message = f"No commits between {base} and {head}"
        return [{"resource": "PullRequest", "code": "custom", "message": message}]
    return None


def comparison_of(repo: Repository, pull: Pull) -> Comparison:
    """The pull request's commits as the branches stand now, or as they stood when it was
    merged (blocks: reads the repository)."""
    if pull.compared_at_merge is not None:
        return pull.compared_at_merge
    heads = branches(repo.path)
    head_sha = heads.get(pull.head, pull.head_sha)
    return compare(repo.path, heads.get(pull.base, head_sha), head_sha)


def placed(repo: Repository, comment: ReviewComment) -> ReviewComment:
    """The comment where GitHub puts it: a reply answers its thread's first comment and takes
    that one's place; a new comment is on the pull request's head, below the diff above its
    line. Blocks: reads the repository."""
    if comment.in_reply_to is not None:
        answered = next(c for c in repo.review_comments if c.comment_id == comment.in_reply_to)
        root_id = answered.in_reply_to or answered.comment_id
        root = next(c for c in repo.review_comments if c.comment_id == root_id)
        where = {"path": root.path, "line": root.line, "diff_hunk": root.diff_hunk}
        return replace(comment, in_reply_to=root_id, commit_id=root.commit_id, **where)
    compared = comparison_of(repo, repo.pulls[comment.number])
    hunk = hunk_above(repo, compared, comment.path, comment.line)
    return replace(comment, commit_id=compared.head_sha, diff_hunk=hunk)


def hunk_above(repo: Repository, compared: Comparison, path: str, line: int) -> str:
    """The diff of `path` from the header of the hunk holding new line `line` down to it, as a
    review comment's `diff_hunk` shows it (blocks: reads the repository)."""
    diff = git(repo.path, "diff", f"{compared.base_sha}...{compared.head_sha}", "--", path)
    hunk: list[str] = []
    at = 0
    for text in diff.splitlines():
        header = re.match(r"@@ -\S+ \+(\d+)", text)
        if header is not None:
            hunk, at = [text], int(header[1]) - 1
        elif hunk:
            hunk.append(text)
            if not text.startswith("-"):  # a removed line is not in the new file
                at += 1
            if at >= line:
                break
    return "\n".join(hunk) or f"@@ -{line},1 +{line},1 @@"


def listed(query: QueryParams, repo: Repository) -> Callable[[Pull], bool]:
    """The filter of `GET /pulls`: `state` (open by default, closed or all), `head` as
    "owner:branch", and `base`."""
    state = query.get("state", "open")
    # GitHub ignores a `head` without its "owner:" (it lists every pull request then).
    owner, colon, head = query.get("head", "").partition(":")

    def wanted(pull: Pull) -> bool:
        same_head = not colon or (owner == repo.owner and pull.head == head)
        same_base = query.get("base", pull.base) == pull.base
        return state in ("all", pull.state) and same_head and same_base

    return wanted


class PullEndpoints:
    """Pull requests, and the comments of their conversations (GitHub's issue comments)."""

    def __init__(self, registry: Registry, shapes: Shapes) -> None:
        self.registry, self.shapes = registry, shapes

    async def list(self, request: Request) -> Response:
        repo = repository_of(self.registry, request)
        if repo is None:
            return error(404, "Not Found")
        query = request.query_params
        # Newest first, as GitHub sorts them by default.
        found = list(filter(listed(query, repo), reversed(repo.pulls.values())))
        return JSONResponse([await self._json(repo, p) for p in page_of(found, query)])

    async def create(self, request: Request) -> Response:
        repo = repository_of(self.registry, request)
        if repo is None:
            return error(404, "Not Found")
        body = await json_body(request)
        if body is None:
            return error(400, "Problems parsing JSON")
        if not body.get("title"):
            return missing("PullRequest", "title")
        problems = await asyncio.to_thread(refusal, repo, body)
        if problems is not None:
            return error(422, "Validation Failed", problems)
        head = str(body["head"]).rpartition(":")[2]
        head_sha = (await asyncio.to_thread(branches, repo.path))[head]
        pull = Pull(0, str(body["title"]), body.get("body"), head, str(body["base"]), head_sha)
        self.registry.open_pull(repo, pull)
        return JSONResponse(await self._json(repo, pull), 201)

    async def get(self, request: Request) -> Response:
        found = self._pull_of(request)
        if found is None:
            return error(404, "Not Found")
        return JSONResponse(await self._json(*found))

    async def update(self, request: Request) -> Response:
        found = self._pull_of(request)
        if found is None:
            return error(404, "Not Found")
        body = await json_body(request)
        if body is None:
            return error(400, "Problems parsing JSON")
        if body.get("state", "open") not in ("open", "closed"):
            invalid = {"resource": "PullRequest", "field": "state", "code": "invalid"}
            return error(422, "Validation Failed", [invalid])
        self.registry.update_pull(found[1], body)
        return JSONResponse(await self._json(*found))

    async def add_comment(self, request: Request) -> Response:
        repo = repository_of(self.registry, request)
        number = request.path_params["number"]
        if repo is None or number not in repo.pulls:
            return error(404, "Not Found")
        body = await json_body(request)
        if body is None:
            return error(400, "Problems parsing JSON")
        if not body.get("body"):
            return missing("IssueComment", "body")
        comment = self.registry.add_comment(repo, number, str(body["body"]))
        return JSONResponse(comment_json(self.shapes, repo, comment), 201)

    async def comments(self, request: Request) -> Response:
        repo = repository_of(self.registry, request)
        number = request.path_params["number"]
        if repo is None or number not in repo.pulls:
            return error(404, "Not Found")
        found = [c for c in repo.comments if c.number == number]
        return JSONResponse(
            [comment_json(self.shapes, repo, c) for c in page_of(found, request.query_params)]
        )

    async def review_comments(self, request: Request) -> Response:
        """`GET /pulls/{number}/comments`: the review comments, oldest first, a page at a time."""
        repo = repository_of(self.registry, request)
        number = request.path_params["number"]
        if repo is None or number not in repo.pulls:
            return error(404, "Not Found")
        found = [c for c in repo.review_comments if c.number == number]
        page = page_of(found, request.query_params)
        return JSONResponse([review_comment_json(self.shapes, repo, c) for c in page])

    def _pull_of(self, request: Request) -> tuple[Repository, Pull] | None:
        repo = repository_of(self.registry, request)
        pull = repo.pulls.get(request.path_params["number"]) if repo is not None else None
        return (repo, pull) if repo is not None and pull is not None else None

    async def _json(self, repo: Repository, pull: Pull) -> dict[str, Any]:
        comparison = await asyncio.to_thread(comparison_of, repo, pull)
        comments = sum(c.number == pull.number for c in repo.comments)
        reviewed = sum(c.number == pull.number for c in repo.review_comments)
        repo_json = self.shapes.repository(repo, self.registry.installation_of(repo))
        return pull_json(self.shapes, repo_json, repo, pull, comparison, comments, reviewed)
