"""Projects: read one, and link it to a GitHub repository the App is installed on (or have the
App create one); the App's installations, claimed by the user who connected them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import projects
from api.deps import CurrentUser, GitHubDep, SessionDep
from api.schemas.errors import ErrorOut
from api.schemas.fields import Slug
from api.schemas.projects import (
    BIGINT_MAX,
    InstallationOut,
    ProjectOut,
    RepositoryCreateRequest,
    RepositoryLinkRequest,
)

router = APIRouter(prefix="/api/projects", tags=["projects"])
installations = APIRouter(prefix="/api/github/installations", tags=["github"])


@router.get("/{project}", responses={404: {"model": ErrorOut, "description": "No such project."}})
async def get_project(project: Slug, session: SessionDep, user: CurrentUser) -> ProjectOut:
    """The project and the GitHub repository it links, if any."""
    return await projects.load_project(session, user.id, project)


@router.put(
    "/{project}/repository",
    responses={
        # FastAPI's own answer to a body it cannot decode.
        400: {"model": ErrorOut, "description": "The body is not UTF-8 text."},
        404: {"model": ErrorOut, "description": "None of the caller's installations has it."},
        409: {
            "model": ErrorOut,
            "description": "No App configured, the installation is suspended or on a personal"
            " account (create the repository there, then link it), or GitHub refused.",
        },
        503: {"model": ErrorOut, "description": "GitHub is unreachable or failing."},
    },
)
async def link_repository(
    project: Slug,
    body: RepositoryLinkRequest | RepositoryCreateRequest,
    session: SessionDep,
    github: GitHubDep,
    user: CurrentUser,
) -> ProjectOut:
    """Link the project (created on first use) to a GitHub repository an installation of the
    App claimed by the caller has, or (`create`) one the App creates in the installation's
    organisation, or finds there already; its next builds start from the repository's default
    branch and open their pull requests there."""
    if isinstance(body, RepositoryCreateRequest):
        return await projects.create_repository(session, github, user.id, project, body.create)
    return await projects.link_repository(session, user.id, project, body.repository)


@installations.post(
    "/{installation_id}/claim",
    responses={
        404: {"model": ErrorOut, "description": "The App has no such installation (yet)."},
        409: {"model": ErrorOut, "description": "Another user claimed it first."},
    },
)
async def claim_installation(
    installation_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)],
    session: SessionDep,
    user: CurrentUser,
) -> InstallationOut:
    """Claim an installation of the App as the caller's, the step after installing the App on a
    GitHub account: the first claim wins. Only its owner links projects to its repositories."""
    return await projects.claim_installation(session, user.id, installation_id)
