"""Projects: read one, and link it to a GitHub repository the App is installed on."""

from __future__ import annotations

from fastapi import APIRouter

from api import projects
from api.deps import CurrentUser, SessionDep
from api.schemas.errors import ErrorOut
from api.schemas.fields import Slug
from api.schemas.projects import ProjectOut, RepositoryLinkRequest

router = APIRouter(prefix="/api/projects", tags=["projects"])


@router.get("/{project}", responses={404: {"model": ErrorOut, "description": "No such project."}})
async def get_project(project: Slug, session: SessionDep, user: CurrentUser) -> ProjectOut:
    """The project and the GitHub repository it links, if any."""
    return await projects.load_project(session, user.id, project)


@router.put(
    "/{project}/repository",
    responses={
        # FastAPI's own answer to a body it cannot decode.
        400: {"model": ErrorOut, "description": "The body is not UTF-8 text."},
        404: {"model": ErrorOut, "description": "No installation of the App has it."},
    },
)
async def link_repository(
    project: Slug, body: RepositoryLinkRequest, session: SessionDep, user: CurrentUser
) -> ProjectOut:
    """Link the project (created on first use) to a GitHub repository an installation of the
    App has; its next builds start from the repository's default branch and open their pull
    requests there."""
    return await projects.link_repository(session, user.id, project, body.repository)
