"""Reading builds: database rows, with the workflow's live view laid over a running one."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.errors import NotFound
from api.schemas import BuildOut, ProgressOut
from cofounder.db import Build, BuildEvent, Project, PullRequest
from cofounder.payloads import BuildStatus, BuildView

log = structlog.get_logger()

# A GET must stay fast when no worker is polling; the database row answers instead.
STATUS_QUERY_TIMEOUT = timedelta(seconds=1)


def _select(owner: str) -> Select[Build, str, PullRequest]:
    # PullRequest is None in rows of builds without one (outer join).
    return (
        select(Build, Project.slug, PullRequest)
        .join(Project, Project.id == Build.project_id)
        .outerjoin(PullRequest, PullRequest.build_id == Build.id)
        .where(Build.owner == owner)
    )


async def load_build(session: AsyncSession, owner: str, build_id: str) -> BuildOut:
    """The build as recorded in the database, or NotFound."""
    row = (await session.execute(_select(owner).where(Build.id == build_id))).first()
    if row is None:
        raise NotFound(f"build {build_id} not found")
    return BuildOut.from_row(row[0], row[1], row[2])


async def list_builds(
    session: AsyncSession,
    owner: str,
    project: str | None,
    status: BuildStatus | None,
    limit: int,
) -> list[BuildOut]:
    """The owner's builds as recorded in the database, newest first."""
    query = _select(owner)
    if project is not None:
        query = query.where(Project.slug == project)
    if status is not None:
        query = query.where(Build.status == status.value)
    query = query.order_by(Build.created_at.desc(), Build.id.desc()).limit(limit)
    return [
        BuildOut.from_row(row[0], row[1], row[2]) for row in (await session.execute(query)).all()
    ]


async def live_build(session: AsyncSession, client: Client, owner: str, build_id: str) -> BuildOut:
    """The build with the workflow's live view while it runs; a finished row is authoritative."""
    build = await load_build(session, owner, build_id)
    events = await session.scalars(
        select(BuildEvent).where(BuildEvent.build_id == build_id).order_by(BuildEvent.seq)
    )
    build.progress = [ProgressOut.model_validate(event) for event in events]
    if build.status.terminal:
        return build
    handle = client.get_workflow_handle(build.workflow_id)
    try:
        view = await handle.query("status", result_type=BuildView, rpc_timeout=STATUS_QUERY_TIMEOUT)
    except Exception as err:
        # No worker yet, a closed workflow, Temporal down: the row is the best answer we have.
        log.debug("status query failed; answering from the database", build_id=build_id, error=err)
        return build
    return build.with_view(view)


async def load_pull_request(session: AsyncSession, owner: str, build_id: str) -> PullRequest:
    """The pull request row of one of the owner's builds, or NotFound."""
    build = await load_build(session, owner, build_id)
    query = select(PullRequest).where(PullRequest.build_id == build.id)
    pr = (await session.execute(query)).scalar_one_or_none()
    if pr is None:
        raise NotFound(f"build {build_id} has no pull request (status: {build.status})")
    return pr
