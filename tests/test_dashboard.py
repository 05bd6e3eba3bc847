"""The dashboard's pages without a browser: served offline at a pinned htmx, out of the OpenAPI
schema, refusing in the API's own words, and answering another owner's ids 404 on every page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.dashboard import actions, assets, memories, pages
from api.main import create_app
from cofounder.db import Project
from cofounder.settings import Settings
from tests.clerk_tokens import Jwks, clerk_settings, token
from tests.helpers import insert_build
from tests.test_tenancy import act_as

DASHBOARD = Path(assets.__file__).parent


def owned_routes() -> list[tuple[str, str]]:
    """Every dashboard route that names a build or a project, as (method, path)."""
    every = [*pages.router.routes, *actions.router.routes, *memories.router.routes]
    routes = [r for r in every if isinstance(r, APIRoute)]
    return [(m, r.path) for r in routes for m in sorted(r.methods) if "{" in r.path]


async def test_htmx_is_served_by_the_app_at_the_pinned_version(http: httpx.AsyncClient) -> None:
    lock = json.loads((DASHBOARD / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/htmx.org"]["version"]
    assert pinned.startswith("2.")
    answer = await http.get("/app/vendor/htmx.min.js")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/javascript")
    assert f'version:"{pinned}"' in answer.text
    page = (await http.get("/app")).text
    # Nothing is fetched from elsewhere: every script and style sheet is the app's own.
    assert re.findall(r'(?:src|href)="(https?:)?//', page) == []
    assert '<script src="/app/vendor/htmx.min.js"' in page


async def test_without_htmx_every_page_says_how_to_install_it(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assets, "HTMX", DASHBOARD / "node_modules" / "missing.js")
    for path in ("/app", "/app/new", "/app/vendor/htmx.min.js"):
        answer = await http.get(path)
        assert answer.status_code == 500, path
        assert "npm ci --prefix api/dashboard" in answer.text


async def test_the_root_leads_to_the_dashboard_and_the_schema_leaves_it_out(
    http: httpx.AsyncClient, http_app: FastAPI
) -> None:
    answer = await http.get("/")
    assert (answer.status_code, answer.headers["location"]) == (307, "/app")
    paths = http_app.openapi()["paths"]
    assert [p for p in paths if p == "/" or p.startswith("/app")] == []


async def test_another_owners_build_and_project_answer_404_on_every_page(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: async_sessionmaker[AsyncSession]
) -> None:
    build_id = await insert_build(sessions, project="shop")  # the local user's
    ids = {"build_id": build_id, "project": "shop", "memory_id": "0" * 32}
    routes = owned_routes()
    assert ("GET", "/app/builds/{build_id}") in routes and len(routes) >= 8
    act_as(http_app, "mallory")
    for method, path in routes:
        answer = await http.request(method, path.format(**ids), headers={"HX-Request": "true"})
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    act_as(http_app, "local")
    for path in ("/app/builds/{build_id}", "/app/projects/{project}"):
        answer = await http.get(path.format(**ids))
        assert answer.status_code == 200, (path, answer.text)


async def test_projects_link_their_repository(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await insert_build(sessions, project="shop")
    await insert_build(sessions, project="notes")
    async with sessions() as session:
        linked = update(Project).where(Project.slug == "shop").values(repository="acme/shop")
        await session.execute(linked)
        await session.commit()
    page = (await http.get("/app")).text
    assert '<a href="https://github.com/acme/shop" rel="noopener">acme/shop</a>' in page
    assert "Local remote <code>" in page and "/local/notes.git</code>" in page


async def test_a_bad_form_value_is_refused_in_the_apis_words(http: httpx.AsyncClient) -> None:
    body = {"project": "Bad Name", "goal": "slugs", "budget_usd": "-1"}
    api = await http.post("/api/builds", json={**body, "budget_usd": -1})
    assert api.status_code == 422
    words = [error["msg"] for error in api.json()["detail"]]
    page = await http.post("/app/builds", data=body)
    assert page.status_code == 422
    fragment = await http.post("/app/builds", data=body, headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and "<html" not in fragment.text
    for answer in (page, fragment):
        for msg in words:
            assert httpx_text(msg) in answer.text
        assert 'value="Bad Name"' in answer.text  # kept, to be corrected
    assert (await http.get("/api/builds")).json()["builds"] == []  # nothing was made


def httpx_text(text: str) -> str:
    """`text` as Jinja escapes it into a page."""
    return text.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;")


async def test_a_form_from_another_site_is_refused(http: httpx.AsyncClient) -> None:
    body = {"project": "demo", "goal": "slugs"}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        answer = await http.post("/app/builds", data=body, headers=headers)
        assert answer.status_code == 403, headers
        assert "another site" in answer.text
    assert (await http.get("/api/builds")).json()["builds"] == []


@pytest_asyncio.fixture
async def clerk_http(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in clerk mode, in-process, trusting a local JWKS."""
    jwks = Jwks()
    with jwks.server:
        served = create_app(clerk_settings(settings, jwks), client=env.client)
        async with served.router.lifespan_context(served):
            transport = httpx.ASGITransport(app=served)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield client


async def test_in_clerk_mode_the_session_cookie_signs_in(clerk_http: httpx.AsyncClient) -> None:
    refused = await clerk_http.get("/app")
    assert refused.status_code == 401
    assert "no session token" in refused.text and refused.headers["content-type"].startswith(
        "text/html"
    )
    cookie = {"Cookie": f"__session={token(sub='user_7')}"}
    signed_in = await clerk_http.get("/app", headers=cookie)
    assert signed_in.status_code == 200
    assert "user_7" in signed_in.text and "dev mode" not in signed_in.text


async def test_a_started_build_leads_to_its_page_with_or_without_htmx(
    http: httpx.AsyncClient,
) -> None:
    body = {"project": "demo", "goal": "slugs", "budget_usd": "2.5", "require_approval": "on"}
    plain = await http.post("/app/builds", data=body)
    assert plain.status_code == 303, plain.text
    told = await http.post("/app/builds", data=body, headers={"HX-Request": "true"})
    assert told.status_code == 200, told.text
    for answer, header in ((plain, "location"), (told, "hx-redirect")):
        build_id = answer.headers[header].removeprefix("/app/builds/")
        build = (await http.get(f"/api/builds/{build_id}")).json()
        assert (build["require_approval"], build["budget"]["limit_usd"]) == (True, 2.5)
        await http.post(f"/api/builds/{build_id}/cancel")
