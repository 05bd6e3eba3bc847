"""A GitHub repository as a git remote: its clone URL, its default branch, and the installation's
credential in git's environment (never in the URL)."""

from __future__ import annotations

from activities.github.app import GitHubApp
from activities.github.errors import github_errors
from activities.github.pulls import split
from activities.gitpush import Remote


async def repository_remote(app: GitHubApp, installation_id: int, repository: str) -> Remote:
    """`repository` (owner/name), as the App's installation `installation_id` reaches it."""
    owner, name = split(repository)
    async with (
        await app.client(installation_id) as github,
        github_errors(f"reading repository {repository}"),
    ):
        found = (await github.rest.repos.async_get(owner, name)).parsed_data
    return Remote(found.clone_url, found.default_branch, await app.git_env(installation_id))
