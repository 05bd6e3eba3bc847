"""Tenancy: every route that names a build, a project or a user answers another owner 404 (never
403), and the routes that list things show a caller only their own."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.worker import Worker

from api.deps import User, get_current_user
from api.main import create_app
from cofounder.settings import Settings
from tests.helpers import api_status

# Every route with an owned id in its path, and a body it would accept from the owner.
OWNED: dict[tuple[str, str], dict[str, Any] | None] = {
    ("get", "/api/builds/{build_id}"): None,
    ("get", "/api/builds/{build_id}/plan"): None,
    ("get", "/api/builds/{build_id}/pull-request"): None,
    ("get", "/api/builds/{build_id}/events"): None,
    ("post", "/api/builds/{build_id}/feedback"): {"body": "Name the Python version"},
    ("post", "/api/builds/{build_id}/budget"): {"add_usd": 1},
    ("post", "/api/builds/{build_id}/approve"): {"approved": True},
    ("post", "/api/builds/{build_id}/pull-request/close"): None,
    ("post", "/api/builds/{build_id}/pull-request/merge"): None,
    ("post", "/api/builds/{build_id}/cancel"): None,
    ("get", "/api/projects/{project}"): None,
    ("put", "/api/projects/{project}/repository"): {"repository": "acme/shop"},
    ("get", "/api/projects/{project}/memories"): None,
    ("post", "/api/projects/{project}/memories"): {"text": "We use pytest"},
    ("delete", "/api/projects/{project}/memories/{memory_id}"): None,
    ("get", "/api/admin/users/{user_id}/usage"): None,
    ("put", "/api/admin/users/{user_id}/plan"): {"tier": "cto"},
}
# Not owned ids: a webhook proves its sender by signature; an installation is claimed by the
# first user who connects it (tests/test_projects.py).
UNOWNED = {"/api/github/installations/{installation_id}/claim"}


def act_as(app: FastAPI, user: str) -> None:
    app.dependency_overrides[get_current_user] = lambda: User(id=user)


async def call(http: httpx.AsyncClient, route: tuple[str, str], ids: dict[str, str]) -> int:
    method, path = route
    body = OWNED[route]
    # The owner's event stream of a build in review ends when asked to stop at settled.
    params = {"until": "settled"} if path.endswith("/events") else None
    answer = await http.request(method, path.format(**ids), json=body, params=params)
    return answer.status_code


def test_every_route_with_an_owned_id_is_checked(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]
    named = {
        (method, path)
        for path, item in paths.items()
        if "{" in path and path not in UNOWNED
        for method in item
    }
    assert named == set(OWNED)


async def test_another_owners_ids_answer_404_everywhere(
    http: httpx.AsyncClient, http_app: FastAPI, worker: list[Worker]
) -> None:
    act_as(http_app, "alice")
    made = await http.post("/api/builds", json={"project": "shop", "goal": "a slugify library"})
    build_id = made.json()["id"]
    await api_status(http, build_id, "in_review", timeout=120)
    stated = await http.post("/api/projects/shop/memories", json={"text": "We use pytest"})
    memory_id = stated.json()["id"]
    ids = {"build_id": build_id, "project": "shop", "user_id": "alice", "memory_id": memory_id}

    act_as(http_app, "mallory")
    for route in OWNED:
        assert await call(http, route, ids) == 404, route
    assert (await http.get("/api/builds")).json()["builds"] == []
    assert (await http.get("/api/billing/usage")).json()["projects"] == []

    # The same requests from their owner find what they name (alice is no admin: 404 there).
    act_as(http_app, "alice")
    for route in OWNED:
        status = await call(http, route, ids)
        assert status != 404 or route[1].startswith("/api/admin") or "repository" in route[1], (
            route,
            status,
        )
    assert [b["id"] for b in (await http.get("/api/builds")).json()["builds"]] == [build_id]
    assert [p["project"] for p in (await http.get("/api/billing/usage")).json()["projects"]] == [
        "shop"
    ]
