"""The owner's projects, for the projects page: each with where its code lives and its builds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cofounder.db import Build, Project
from cofounder.settings import Settings

GITHUB_API = "https://api.github.com"


@dataclass(frozen=True)
class ProjectRow:
    slug: str
    repository: str | None  # owner/name on GitHub; None: the local remote
    repository_url: str  # the repository's page on GitHub, or the local remote's path
    builds: int
    latest: datetime | None


async def list_projects(session: AsyncSession, settings: Settings, owner: str) -> list[ProjectRow]:
    """The owner's projects by name, each with its build count and latest build's time."""
    query = (
        select(Project.slug, Project.repository, func.count(Build.id), func.max(Build.created_at))
        .outerjoin(Build, Build.project_id == Project.id)
        .where(Project.owner == owner)
        .group_by(Project.id, Project.slug, Project.repository)
        .order_by(Project.slug)
    )
    rows = (await session.execute(query)).all()
    return [
        ProjectRow(slug, repository, _where(settings, owner, slug, repository), count, latest)
        for slug, repository, count, latest in rows
    ]


def _where(settings: Settings, owner: str, slug: str, repository: str | None) -> str:
    if repository is None:
        return str(settings.git_remote(owner, slug))
    return f"{github_web_url(settings.github_api_url)}/{repository}"


def github_web_url(api_url: str) -> str:
    """GitHub's web address for its API's: github.com, or a GitHub Enterprise Server's host
    (whose API is under /api/v3)."""
    api_url = api_url.rstrip("/")
    if api_url == GITHUB_API:
        return "https://github.com"
    return api_url.removesuffix("/api/v3")
