"""A project's link to a GitHub repository: only to one the App's installations have."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.creation import ensure_project
from api.errors import NotFound
from api.schemas.projects import ProjectOut
from cofounder.db import GitHubInstallation, GitHubRepository, Project


async def link_repository(
    session: AsyncSession, owner: str, slug: str, repository: str
) -> ProjectOut:
    """Link `slug` (created on first use) to `repository`, which an installation of the App
    must have (as its webhooks told); NotFound otherwise, and nothing changes."""
    query = (
        select(GitHubRepository.installation_id)
        .join(GitHubInstallation, GitHubInstallation.id == GitHubRepository.installation_id)
        .where(func.lower(GitHubRepository.full_name) == repository.lower())
        .where(GitHubInstallation.suspended.is_(False))
    )
    installation_id = (await session.execute(query)).scalars().first()
    if installation_id is None:
        raise NotFound(f"the GitHub App has no installation with {repository}")
    project = await session.get(Project, await ensure_project(session, owner, slug))
    assert project is not None
    project.repository, project.installation_id = repository, installation_id
    await session.commit()
    return ProjectOut(project=slug, repository=repository, installation_id=installation_id)


async def load_project(session: AsyncSession, owner: str, slug: str) -> ProjectOut:
    query = select(Project).where(Project.owner == owner, Project.slug == slug)
    project = (await session.execute(query)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"project {slug} not found")
    return ProjectOut(
        project=slug, repository=project.repository, installation_id=project.installation_id
    )
