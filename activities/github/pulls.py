"""A build's pull request on GitHub: found by its head branch, or opened once."""

from __future__ import annotations

from dataclasses import dataclass

from githubkit import GitHub, TokenAuthStrategy
from githubkit_schemas.latest.models import PullRequest, PullRequestSimple

from activities.errors import BadRequest
from activities.github.errors import github_errors


@dataclass(frozen=True)
class Pull:
    number: int
    url: str
    state: str  # open or closed
    head_sha: str
    merged: bool = False

    @classmethod
    def of(cls, pull: PullRequest | PullRequestSimple) -> Pull:
        merged = pull.merged_at is not None
        return cls(pull.number, pull.html_url, pull.state, pull.head.sha, merged)


def split(repository: str) -> tuple[str, str]:
    """`owner/name` as its two parts, or BadRequest."""
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        raise BadRequest(f"not a repository of the form owner/name: {repository!r}")
    return owner, name


async def find_pull(github: GitHub[TokenAuthStrategy], repository: str, head: str) -> Pull | None:
    """The pull request whose head is branch `head` of `repository`, open or closed."""
    owner, name = split(repository)
    async with github_errors(f"finding the pull request of {head} in {repository}"):
        found = await github.rest.pulls.async_list(owner, name, state="all", head=f"{owner}:{head}")
    pulls: list[PullRequestSimple] = list(found.parsed_data)
    return Pull.of(pulls[0]) if pulls else None


async def open_pull(
    github: GitHub[TokenAuthStrategy],
    repository: str,
    *,
    head: str,
    base: str,
    title: str,
    body: str,
) -> Pull:
    """The pull request of branch `head` into `base`: the one an earlier attempt opened, or a
    new one; a retried activity never opens a second."""
    existing = await find_pull(github, repository, head)
    if existing is not None:
        return existing
    owner, name = split(repository)
    try:
        async with github_errors(f"opening the pull request of {head} in {repository}"):
            created = await github.rest.pulls.async_create(
                owner, name, title=title, head=head, base=base, body=body
            )
    except BadRequest:
        # 422 when a concurrent attempt opened it first: that one is the result.
        existing = await find_pull(github, repository, head)
        if existing is None:
            raise
        return existing
    return Pull.of(created.parsed_data)
