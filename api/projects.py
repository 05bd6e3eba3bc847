"""A project's link to a GitHub repository: one that an installation of the App has, or one the
App creates through it; either way through an installation the caller has claimed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activities import errors as vendor
from activities.github import repos
from activities.github.app import GitHubApp
from api.creation import ensure_project
from api.errors import Conflict, NotFound, Unavailable
from api.schemas.projects import InstallationOut, NewRepository, ProjectOut
from cofounder.db import GitHubInstallation, GitHubRepository, Project, insert_for

NO_APP = (
    "no GitHub App is configured here: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY"
    " (and GITHUB_API_URL for GitHub Enterprise Server)"
)


async def claim_installation(
    session: AsyncSession, owner: str, installation_id: int
) -> InstallationOut:
    """Make the installation `owner`'s, the step after installing the App: the first claim wins
    (a repeated one is answered the same), another user's is a Conflict."""
    # One conditional UPDATE: of two concurrent first claims, exactly one finds it unowned.
    unowned = GitHubInstallation.owner.is_(None)
    claim = update(GitHubInstallation).where(GitHubInstallation.id == installation_id, unowned)
    await session.execute(claim.values(owner=owner))
    await session.commit()
    row = await session.get(GitHubInstallation, installation_id, populate_existing=True)
    if row is None:
        raise NotFound(
            f"the GitHub App has no installation {installation_id}; if it was just installed,"
            " GitHub's webhook may not have arrived yet: try again shortly"
        )
    if row.owner != owner:
        raise Conflict(f"installation {installation_id} was claimed by another user")
    return InstallationOut(
        installation_id=row.id,
        account=row.account,
        account_type=row.account_type,
        suspended=row.suspended,
    )


async def link_repository(
    session: AsyncSession, owner: str, slug: str, repository: str
) -> ProjectOut:
    """Link `slug` (created on first use) to `repository`, which an installation of the App
    claimed by `owner` must have (as its webhooks told); NotFound otherwise, and nothing
    changes."""
    query = (
        select(GitHubInstallation)
        .join(GitHubRepository, GitHubRepository.installation_id == GitHubInstallation.id)
        .where(func.lower(GitHubRepository.full_name) == repository.lower())
        .where(GitHubInstallation.owner == owner)
    )
    installation = (await session.execute(query)).scalars().first()
    if installation is None:
        raise NotFound(f"the GitHub App has no installation with {repository} for this user")
    _check_active(installation)
    return await _link(session, owner, slug, repository, installation.id)


async def create_repository(
    session: AsyncSession, app: GitHubApp | None, owner: str, slug: str, new: NewRepository
) -> ProjectOut:
    """Have the App create `new` in an organisation (or find it there, so a retry creates
    nothing more), record it as its installation's and link `slug` to it."""
    if app is None:
        raise Conflict(NO_APP)
    installation = await _installation_on(session, owner, new.owner)
    _check_active(installation)
    if installation.account_type != "Organization":
        raise Conflict(
            f"GitHub lets the App create repositories in an organisation only, and {new.owner}"
            f" is a personal account: create {new.owner}/{new.name} on GitHub, give the App's"
            ' installation access to it, then link it with {"repository": ...}'
        )
    async with _github_refusals():
        made = await repos.create_in_org(
            app, installation.id, installation.account, new.name, private=new.private
        )
    await _record(session, installation.id, made)
    return await _link(session, owner, slug, made.full_name, installation.id)


async def load_project(session: AsyncSession, owner: str, slug: str) -> ProjectOut:
    query = select(Project).where(Project.owner == owner, Project.slug == slug)
    project = (await session.execute(query)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"project {slug} not found")
    return ProjectOut(
        project=slug, repository=project.repository, installation_id=project.installation_id
    )


async def _installation_on(session: AsyncSession, owner: str, account: str) -> GitHubInstallation:
    """`owner`'s installation on the GitHub account; NotFound also when it is someone else's,
    which is not told apart from none."""
    query = (
        select(GitHubInstallation)
        .where(func.lower(GitHubInstallation.account) == account.lower())
        .where(GitHubInstallation.owner == owner)
    )
    installation = (await session.execute(query)).scalars().first()
    if installation is None:
        raise NotFound(f"the GitHub App has no installation on {account} for this user")
    return installation


def _check_active(installation: GitHubInstallation) -> None:
    if installation.suspended:
        raise Conflict(
            f"the GitHub App's installation on {installation.account} is suspended:"
            " unsuspend it in the account's GitHub settings"
        )


async def _record(session: AsyncSession, installation_id: int, made: repos.OrgRepository) -> None:
    """The repository as its installation's (as the webhook telling of it will say too)."""
    row = {"id": made.repository_id, "installation_id": installation_id}
    statement = insert_for(session)(GitHubRepository).values(**row, full_name=made.full_name)
    # Whichever of this and the webhook comes second finds the row and keeps it current.
    kept = {"installation_id": installation_id, "full_name": made.full_name}
    await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=kept))


async def _link(
    session: AsyncSession, owner: str, slug: str, repository: str, installation_id: int
) -> ProjectOut:
    project = await session.get(Project, await ensure_project(session, owner, slug))
    assert project is not None
    project.repository, project.installation_id = repository, installation_id
    await session.commit()
    return ProjectOut(project=slug, repository=repository, installation_id=installation_id)


@asynccontextmanager
async def _github_refusals() -> AsyncIterator[None]:
    """GitHub's refusals (already ours, from the adapter) as the API's answers."""
    try:
        yield
    except (vendor.Unavailable, vendor.RateLimited) as err:
        raise Unavailable(f"{err}; try again") from None
    except vendor.NotAuthorized as err:
        raise Conflict(
            f"{err}; the App needs the Administration (read and write) permission to create"
            " repositories"
        ) from None
    except vendor.BadRequest as err:
        raise Conflict(str(err)) from None
