"""Creating a build: its rows in the app database and its started workflow, all or nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.admission import Admission, Admit, Ask
from api.errors import Conflict, Unavailable
from api.schemas.builds import BuildCreate, BuildOut
from cofounder import metrics
from cofounder.db import Build, BuildRequest, Project, insert_for
from cofounder.db.models import as_utc, utcnow
from cofounder.payloads import (
    BUILD_STATUS,
    OWNER,
    PROJECT,
    Budget,
    BuildInput,
    BuildStatus,
    RepositoryLink,
    build_workflow_id,
)
from cofounder.settings import Settings
from workflows.build import BuildWorkflow

log = structlog.get_logger()

START_TIMEOUT = timedelta(seconds=10)
# An Idempotency-Key returns its first build for this long; after it, the key is new again.
KEY_LIFETIME = timedelta(days=1)


def new_build_id() -> str:
    return uuid.uuid4().hex[:16]


async def create_build(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    owner: str,
    request: BuildCreate,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> BuildOut:
    """Admit the build under the owner's plan, insert the project (on first use) and the build,
    and start its workflow: all or nothing. A repeated Idempotency-Key answers its first build."""
    admit = Admit(session, settings, owner)
    # Locked (until commit, this owner's admissions take turns) when there is something to
    # count, or a key to look up.
    user = await admit.account(lock=idempotency_key is not None)
    digest = _digest(request)
    if idempotency_key is not None:
        first = await _first_build(session, owner, idempotency_key, digest)
        if first is not None:
            await session.rollback()
            return first
    admission = await admit.check(user, Ask(request.project, request.budget_usd))
    project = await load_project(session, owner, request.project)
    build = new_build(owner, project.id, request, admission)
    session.add(build)
    if idempotency_key is not None:
        session.add(
            BuildRequest(owner=owner, key=idempotency_key, body_sha256=digest, build_id=build.id)
        )
    starting = _start_workflow(client, settings, build, project, admission, request_id)
    await _save_when_started(session, starting)
    metrics.build_started()
    log.info("build created", build_id=build.id, project=request.project, tier=admission.tier)
    return BuildOut.from_row(build, request.project, None)


def new_build(owner: str, project_id: int, request: BuildCreate, admission: Admission) -> Build:
    """A new build's row (queued, under a new id), not yet in any session."""
    build_id = new_build_id()
    return Build(
        id=build_id,
        project_id=project_id,
        owner=owner,
        goal=request.goal,
        status=BuildStatus.QUEUED.value,
        require_approval=request.require_approval,
        workflow_id=build_workflow_id(build_id),
        attempts=0,
        input_tokens=0,
        output_tokens=0,
        cost_micro_usd=0,
        budget_micro_usd=admission.budget_micro_usd,
    )


def _digest(request: BuildCreate) -> str:
    body = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


async def _first_build(session: AsyncSession, owner: str, key: str, digest: str) -> BuildOut | None:
    """The build this key made within its lifetime; Conflict if it came with another body."""
    made = await session.get(BuildRequest, (owner, key))
    if made is None:
        return None
    if utcnow() - as_utc(made.created_at) >= KEY_LIFETIME:
        await session.delete(made)  # expired: the key starts a new build
        await session.flush()
        return None
    if made.body_sha256 != digest:
        raise Conflict("this Idempotency-Key was used for another request body; use a new key")
    build = await session.get(Build, made.build_id)
    project = await session.get(Project, build.project_id) if build else None
    assert build is not None and project is not None
    return BuildOut.from_row(build, project.slug, None)


async def ensure_project(session: AsyncSession, owner: str, slug: str) -> int:
    """The project's id, inserting it if new."""
    return (await load_project(session, owner, slug)).id


async def load_project(session: AsyncSession, owner: str, slug: str) -> Project:
    """The owner's project, inserted if new; ON CONFLICT keeps concurrent first uses safe. One
    that exists costs one read, and no write: on SQLite a write takes the database's lock."""
    found = select(Project).where(Project.owner == owner, Project.slug == slug)
    project = await session.scalar(found)
    if project is None:
        statement = (
            insert_for(session)(Project)
            .values(owner=owner, slug=slug, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["owner", "slug"])
        )
        await session.execute(statement)
        project = (await session.scalars(found)).one()
    return project


async def _save_when_started(
    session: AsyncSession, starting: Awaitable[WorkflowHandle[Any, Any]]
) -> None:
    """Commit the session's rows once the workflow has started: all or nothing.

    The rows are flushed while the start is on its way (their round trip is off the request's
    path) but committed only after it: if either fails, the rows are rolled back and a started
    workflow is terminated.
    """
    started, flushed = await asyncio.gather(starting, session.flush(), return_exceptions=True)
    if isinstance(started, BaseException):
        await session.rollback()
        raise started
    if isinstance(flushed, BaseException):
        await _terminate(started, "the API could not write the build")
        await session.rollback()
        raise flushed
    try:
        await session.commit()
    except Exception as err:
        await session.rollback()
        await _terminate(started, "the API could not save the build")
        raise Unavailable("could not save the build; it was not started") from err


async def _start_workflow(
    client: Client,
    settings: Settings,
    build: Build,
    project: Project,
    admission: Admission,
    request_id: str | None,
) -> WorkflowHandle[Any, Any]:
    link = None
    if project.repository and project.installation_id is not None:
        link = RepositoryLink(
            repository=project.repository, installation_id=project.installation_id
        )
    try:
        return await client.start_workflow(
            BuildWorkflow.run,
            workflow_input(settings, build, project.slug, admission, link),
            id=build.workflow_id,
            task_queue=settings.task_queue,
            search_attributes=start_attributes(project.slug, build.owner),
            memo={"request_id": request_id} if request_id else None,
            rpc_timeout=START_TIMEOUT,
        )
    except Exception as err:
        log.warning("workflow start failed", build_id=build.id, error=str(err))
        raise Unavailable(
            f"could not start the build: Temporal is unavailable ({type(err).__name__}); "
            "nothing was created, try again"
        ) from err


def workflow_input(
    settings: Settings,
    build: Build,
    project: str,
    admission: Admission,
    link: RepositoryLink | None,
) -> BuildInput:
    """The input of a new build's workflow."""
    return BuildInput(
        repository=link,
        build_id=build.id,
        project=project,
        goal=build.goal,
        require_approval=build.require_approval,
        max_attempts=settings.max_attempts,
        max_turns=settings.max_turns,
        max_review_rounds=settings.max_review_rounds,
        review=settings.review(),
        owner=build.owner,
        models=admission.models,
        budget=Budget(
            limit_micro_usd=build.budget_micro_usd or 0,
            wait_seconds=settings.budget_wait_seconds,
        ),
    )


def start_attributes(project: str, owner: str) -> TypedSearchAttributes:
    """The search attributes a new build's workflow starts with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(BUILD_STATUS, BuildStatus.QUEUED.value),
            SearchAttributePair(PROJECT, project),
            SearchAttributePair(OWNER, owner),
        ]
    )


async def _terminate(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    try:
        await handle.terminate(reason=reason)
    except Exception:
        # Nothing more can be done here; the orphan shows up in Temporal with this log line.
        log.exception("could not terminate an unsaved build", workflow_id=handle.id)
