"""Merging a build's pull request into main on the project's local remote, or closing it.

Git first, then the build is told, then the row: the merge is recorded in the remote in the
same ref transaction that moves main, so a request that dies between them is finished by the
next one, which finds the first merge instead of making another and tells the build again (its
workflow takes the news twice as once). The local remotes live on this machine's data dir (the
single-machine default), so the API reads and writes them directly, off the event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.gitcli import GitFailed, GitUnavailable
from activities.gitmerge import BranchMissing, MergeConflict, Merged, merge_branch
from api.controls import send_closed
from api.errors import Conflict, Unavailable
from api.queries import load_build
from api.schemas.pull_requests import PullRequestOut
from cofounder import build_log
from cofounder.db import PullRequest
from cofounder.db.models import PR_CLOSED, PR_MERGED, PR_OPEN
from cofounder.payloads import PullRequestClosed
from cofounder.settings import Settings

log = structlog.get_logger()


async def merge_pull_request(
    session: AsyncSession, settings: Settings, client: Client, owner: str, build_id: str
) -> PullRequestOut:
    """Merge the pull request of one of the owner's builds (NotFound for another's) and end its
    review session; merging a merged one answers the same again. Conflict when there is none,
    or it conflicts."""
    build = await load_build(session, owner, build_id)
    pr = await _pull_request(session, build_id)
    if pr is None:
        raise Conflict(f"build {build_id} has no pull request to merge (status: {build.status})")
    if pr.state == PR_MERGED:
        return PullRequestOut.from_row(pr)
    if pr.state == PR_CLOSED:
        raise Conflict(f"the pull request of build {build_id} is closed; it cannot be merged")
    if pr.provider != "local":
        raise Conflict(
            f"the pull request of build {build_id} is on GitHub: merge it there ({pr.url})"
        )
    merged = await _merge(settings.git_remote(owner, build.project), pr, build_id)
    # Before the row: should this fail, the row stays open and the next request tells it again.
    await send_closed(session, client, build.workflow_id, PullRequestClosed(merged=True, by=owner))
    statement = (
        update(PullRequest)
        .where(PullRequest.id == pr.id, PullRequest.state == PR_OPEN)
        .values(state=PR_MERGED, merged_at=datetime.now(UTC), merge_commit_sha=merged.sha)
    )
    moved = await session.execute(statement)  # a concurrent request's merge, first, stands
    if moved.rowcount:  # type: ignore[attr-defined]
        await session.refresh(pr)
        await build_log.add(session, build_log.pull_request(pr, "merged"))
    await session.commit()
    await session.refresh(pr)
    log.info("pull request merged", build_id=build_id, sha=pr.merge_commit_sha)
    return PullRequestOut.from_row(pr)


async def close_pull_request(
    session: AsyncSession, client: Client, owner: str, build_id: str
) -> PullRequestOut:
    """Close the pull request of one of the owner's builds unmerged and end its review session;
    closing a closed one answers the same again. Conflict when there is none, it is merged, or
    it is on GitHub (closed there, GitHub's webhook tells the build)."""
    build = await load_build(session, owner, build_id)
    pr = await _pull_request(session, build_id)
    if pr is None:
        raise Conflict(f"build {build_id} has no pull request to close (status: {build.status})")
    if pr.state == PR_CLOSED:
        return PullRequestOut.from_row(pr)
    if pr.state == PR_MERGED:
        raise Conflict(f"the pull request of build {build_id} is merged; it cannot be closed")
    if pr.provider != "local":
        raise Conflict(
            f"the pull request of build {build_id} is not local: close it on GitHub ({pr.url})"
        )
    await send_closed(session, client, build.workflow_id, PullRequestClosed(merged=False, by=owner))
    statement = (
        update(PullRequest)
        .where(PullRequest.id == pr.id, PullRequest.state == PR_OPEN)
        .values(state=PR_CLOSED)
    )
    moved = await session.execute(statement)  # a merge recorded first stands
    if moved.rowcount:  # type: ignore[attr-defined]
        await session.refresh(pr)
        await build_log.add(session, build_log.pull_request(pr, "closed"))
    await session.commit()
    await session.refresh(pr)
    log.info("pull request closed", build_id=build_id, state=pr.state)
    return PullRequestOut.from_row(pr)


async def _pull_request(session: AsyncSession, build_id: str) -> PullRequest | None:
    query = select(PullRequest).where(PullRequest.build_id == build_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _merge(remote: Path, pr: PullRequest, build_id: str) -> Merged:
    message = f"Merge pull request #{pr.id} from {pr.branch}\n\n{pr.title}"
    date = f"{int(datetime.now(UTC).timestamp())} +0000"
    try:
        return await merge_branch(remote, pr.branch, message, date, into=pr.base)
    except MergeConflict as err:
        raise Conflict(
            f"the pull request of build {build_id} cannot be merged: {err}; nothing was changed"
        ) from err
    except BranchMissing as err:
        raise Conflict(f"the pull request of build {build_id} cannot be merged: {err}") from err
    except (GitFailed, GitUnavailable) as err:
        raise Unavailable(f"the merge could not be made: {err}; try again") from err
