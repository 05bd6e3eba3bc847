"""A build published on GitHub: its branch pushed over HTTPS as the App's installation, and its
pull request opened once. A retry finds the branch and the pull request an earlier attempt made.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.github.app import GitHubApp
from activities.github.pulls import Pull, open_pull
from activities.github.remote import repository_remote
from activities.gitpush import Pushed, push_branch


@dataclass(frozen=True)
class Change:
    """What a build publishes: its files as the branch's whole tree over `base`."""

    branch: str
    files: dict[str, bytes]
    message: str
    date: str
    base: str | None
    title: str
    body: str


@dataclass(frozen=True)
class Published:
    pushed: Pushed
    pull: Pull
    base_branch: str


async def publish_on_github(
    app: GitHubApp, installation_id: int, repository: str, change: Change
) -> Published:
    """Push `change.branch` to `repository` (unless there) and open its pull request into the
    repository's default branch (unless open)."""
    remote = await repository_remote(app, installation_id, repository)
    pushed = await push_branch(
        remote, change.branch, change.files, change.message, change.date, change.base
    )
    async with await app.client(installation_id) as github:
        pull = await open_pull(
            github,
            repository,
            head=change.branch,
            base=remote.default_branch,
            title=change.title,
            body=change.body,
        )
    return Published(pushed=pushed, pull=pull, base_branch=remote.default_branch)
