"""The web dashboard at /app: server-rendered pages (Jinja2) with htmx, served at a pinned
version by the app itself, and a small script that follows a build's events live."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from api.dashboard import actions, memories, pages
from api.dashboard.assets import STATIC
from api.ratelimit import limit_mutations


def install(app: FastAPI) -> None:
    """Serve the dashboard from `app`: its pages (out of the OpenAPI schema, which is the JSON
    API's) and its static files. Its posts count against the user's rate limit like the API's."""
    router = APIRouter(dependencies=[Depends(limit_mutations)])
    router.include_router(pages.router)
    router.include_router(actions.router)
    router.include_router(memories.router)
    app.include_router(pages.root)
    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="dashboard-static")
