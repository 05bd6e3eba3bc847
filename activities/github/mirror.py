"""A linked project's local bare remote as a mirror of its GitHub repository: before a build
looks at its base, the repository's default branch is fetched into the mirror's main, so the
plan, the checkout and the pin (`refs/cofounder/bases/<build>`) work as for a local project."""

from __future__ import annotations

from pathlib import Path

from activities.gitcli import GitFailed, git
from activities.github.app import GitHubApp, linked
from activities.github.remote import repository_remote
from activities.gitrepo import MAIN, ensure_remote
from cofounder.payloads import RepositoryLink
from cofounder.settings import Settings


async def refresh_mirror(app: GitHubApp, link: RepositoryLink, git_dir: Path, project: str) -> Path:
    """The project's bare remote with main at the repository's default branch (left as it is
    when the repository has no commit yet)."""
    remote = await ensure_remote(git_dir, project)
    github = await repository_remote(app, link.installation_id, link.repository)
    refspec = f"+refs/heads/{github.default_branch}:refs/heads/{MAIN}"
    try:
        await git(
            "--git-dir",
            str(remote),
            "fetch",
            "--quiet",
            str(github.location),
            refspec,
            home=remote,
            env=github.env,
        )
    except GitFailed as err:
        if "couldn't find remote ref" not in str(err):
            raise
    return remote


async def base_remote(
    settings: Settings,
    app: GitHubApp | None,
    owner: str,
    project: str,
    link: RepositoryLink | None,
) -> Path:
    """Where a build reads its base: the project's bare remote, refreshed first as the mirror of
    its GitHub repository when the project links one."""
    if link is None:
        return settings.git_remote(owner, project)
    return await refresh_mirror(linked(app), link, settings.git_dir / owner, project)
