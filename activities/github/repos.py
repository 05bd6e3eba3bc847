"""Repositories the App creates for a project: in an organisation, as the installation on it.

GitHub lets an installation create repositories in an organisation only; a personal account's
repositories are made by their owner (an installation token cannot), then linked.
"""

from __future__ import annotations

from dataclasses import dataclass

from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import RequestFailed

from activities.errors import BadRequest
from activities.github.app import GitHubApp
from activities.github.errors import github_errors

# GitHub's words, in the 422 it answers to a name the account already uses.
NAME_TAKEN = "already exists"


@dataclass(frozen=True)
class OrgRepository:
    """A repository of the organisation, as GitHub answered; `created` False: it was there."""

    repository_id: int
    full_name: str
    default_branch: str
    created: bool


class RepositoryHidden(BadRequest):
    """The name is taken by a repository the installation cannot see."""


async def create_in_org(
    app: GitHubApp, installation_id: int, org: str, name: str, *, private: bool
) -> OrgRepository:
    """`org/name`, created as the installation with a README commit (so it has a default
    branch to build on); when the organisation already has it and the installation can see
    it, that one, so a retried request creates nothing more."""
    github = await app.client(installation_id)
    async with github, github_errors(f"creating {org}/{name}"):
        try:
            made = await github.rest.repos.async_create_in_org(
                org, name=name, private=private, auto_init=True
            )
        except RequestFailed as err:
            if not _name_taken(err):
                raise
            return await _existing(github, org, name)
    repo = made.parsed_data
    return OrgRepository(repo.id, repo.full_name, repo.default_branch, created=True)


async def _existing(github: GitHub[TokenAuthStrategy], org: str, name: str) -> OrgRepository:
    try:
        found = (await github.rest.repos.async_get(org, name)).parsed_data
    except RequestFailed as err:
        if err.response.status_code != 404:
            raise
        raise RepositoryHidden(
            f"{org}/{name} already exists, but the App's installation on {org} cannot see it:"
            " give the installation access to it on GitHub, then link it"
        ) from None
    return OrgRepository(found.id, found.full_name, found.default_branch, created=False)


def _name_taken(err: RequestFailed) -> bool:
    """GitHub's 422 for a name the account already has (its `errors` say so)."""
    if err.response.status_code != 422:
        return False
    try:
        body = err.response.raw_response.json()
    except ValueError:
        return False
    problems = body.get("errors") if isinstance(body, dict) else None
    return any(
        isinstance(p, dict) and NAME_TAKEN in str(p.get("message", "")) for p in problems or []
    )
