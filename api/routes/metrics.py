"""Prometheus scrapes the API's metrics here (left out of the OpenAPI schema: not for users)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.responses import Response

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics() -> Response:
    """The process's registry in Prometheus's text format (a sync route: FastAPI runs it in a
    thread, so collecting never holds the event loop)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
