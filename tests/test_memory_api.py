"""What a project remembers, through the API: listed newest first or searched best first,
removed for good, stated by the founder; only ever the caller's own project's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.creation import ensure_project
from api.main import create_app
from cofounder.memory import MemoryStore, NewMemory, Scope
from cofounder.settings import Settings
from tests import memory_contract
from tests.test_tenancy import act_as

Sessions = async_sessionmaker[AsyncSession]
COMMENT = "https://github.com/acme/shop/pull/3#discussion_r17"
FACTS = [
    memory_contract.FACTS[0],  # a decision of build b1
    NewMemory(key="b1:outcome", kind="outcome", text="Built a slug generator", source="b1"),
    NewMemory(key="c17", kind="feedback", text="Accept underscores in slugs", source=COMMENT),
]


async def seed(
    app: FastAPI, sessions: Sessions, owner: str, project: str, items: list[NewMemory]
) -> list[str]:
    """`owner`'s project, remembering `items` (added together: the last is the newest)."""
    async with sessions() as session:
        await ensure_project(session, owner, project)
        await session.commit()
    store: MemoryStore = app.state.memory
    return await store.add(Scope(owner=owner, project=project), items)


def listed(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    memories: list[dict[str, Any]] = answer.json()["memories"]
    return memories


async def test_a_project_lists_and_searches_what_it_remembers(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    ids = await seed(http_app, sessions, "local", "shop", FACTS)
    newest = listed(await http.get("/api/projects/shop/memories"))
    assert [m["id"] for m in newest] == list(reversed(ids))
    feedback, _, decision = newest
    assert (feedback["source"], feedback["source_url"]) == (COMMENT, COMMENT)
    assert (decision["source"], decision["source_url"], decision["build_id"]) == ("b1", None, "b1")
    assert decision["kind"] == "decision" and decision["score"] is None
    assert decision["created_at"].endswith("Z") or decision["created_at"].endswith("+00:00")
    paged = listed(await http.get("/api/projects/shop/memories", params={"limit": 1, "offset": 1}))
    assert [m["id"] for m in paged] == [ids[1]]

    found = listed(await http.get("/api/projects/shop/memories", params={"q": "which tests?"}))
    assert found[0]["id"] == ids[0] and found[0]["score"] is not None
    nothing = await http.get("/api/projects/shop/memories", params={"q": "kubernetes"})
    assert listed(nothing) == []


async def test_a_removed_memory_is_gone_and_removing_it_again_is_404(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    ids = await seed(http_app, sessions, "local", "shop", FACTS)
    removed = await http.delete(f"/api/projects/shop/memories/{ids[0]}")
    assert (removed.status_code, removed.content) == (204, b"")
    assert ids[0] not in [m["id"] for m in listed(await http.get("/api/projects/shop/memories"))]
    searched = await http.get("/api/projects/shop/memories", params={"q": "pytest test suite"})
    assert ids[0] not in [m["id"] for m in listed(searched)]
    again = await http.delete(f"/api/projects/shop/memories/{ids[0]}")
    assert again.status_code == 404 and ids[0] in again.json()["detail"]
    # The build that made it remembering again (a retried activity) does not bring it back.
    assert await seed(http_app, sessions, "local", "shop", FACTS[:1]) == []


async def test_owners_whose_projects_share_a_name_see_only_their_own(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    alice = await seed(http_app, sessions, "alice", "shop", FACTS)
    bob = await seed(http_app, sessions, "bob", "shop", FACTS[:1])
    act_as(http_app, "bob")
    assert [m["id"] for m in listed(await http.get("/api/projects/shop/memories"))] == bob
    searched = await http.get("/api/projects/shop/memories", params={"q": "pytest slugs"})
    assert [m["id"] for m in listed(searched)] == bob
    for memory_id in alice:  # Alice's ids are answered as ids that do not exist
        assert (await http.delete(f"/api/projects/shop/memories/{memory_id}")).status_code == 404
    act_as(http_app, "alice")
    assert len(listed(await http.get("/api/projects/shop/memories"))) == len(FACTS)
    # Mallory has no project by that name: 404, as every project route answers.
    act_as(http_app, "mallory")
    assert (await http.get("/api/projects/shop/memories")).status_code == 404


async def test_an_unknown_project_is_404_on_every_memory_route(http: httpx.AsyncClient) -> None:
    base = "/api/projects/nowhere/memories"
    answers = [
        await http.get(base),
        await http.get(base, params={"q": "pytest"}),
        await http.post(base, json={"text": "We use pytest"}),
        await http.delete(f"{base}/{'0' * 32}"),
    ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"detail": "project nowhere not found"}


BAD_READS = [
    {"limit": 0},
    {"limit": 201},
    {"limit": "ten"},
    {"offset": -1},
    {"offset": 10_001},
    {"q": ""},
    {"q": "x" * 501},
]
BAD_BODIES = [
    {},
    {"text": ""},
    {"text": "   "},
    {"text": "a\x00b"},
    {"text": "x" * 2001},
    {"text": "We use pytest", "kind": "outcome"},
    {"text": "We use pytest", "source": "b1"},
    {"text": 7},
]


@pytest.mark.parametrize("params", BAD_READS)
async def test_bad_reads_are_422(http: httpx.AsyncClient, params: dict[str, Any]) -> None:
    answer = await http.get("/api/projects/shop/memories", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]


async def test_bad_ids_bodies_and_slugs_are_422_and_change_nothing(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    await seed(http_app, sessions, "local", "shop", FACTS)
    for memory_id in ("not an id", "x" * 65, "a.b"):
        answer = await http.delete(f"/api/projects/shop/memories/{memory_id}")
        assert answer.status_code == 422, (memory_id, answer.text)
    assert (await http.get("/api/projects/Shop!/memories")).status_code == 422
    for body in BAD_BODIES:
        answer = await http.post("/api/projects/shop/memories", json=body)
        assert answer.status_code == 422, (body, answer.text)
    blank = await http.post("/api/projects/shop/memories", json={"text": "  "})
    assert "other than whitespace" in blank.text
    assert len(listed(await http.get("/api/projects/shop/memories"))) == len(FACTS)


async def test_a_founder_states_a_convention_once_per_key(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    await seed(http_app, sessions, "local", "shop", FACTS)
    body = {"text": "  No new dependencies without asking  "}
    key = {"Idempotency-Key": "convention-1"}
    made = await http.post("/api/projects/shop/memories", json=body, headers=key)
    assert made.status_code == 201, made.text
    memory = made.json()
    assert (memory["kind"], memory["text"], memory["source"]) == (
        "convention",
        "No new dependencies without asking",
        "founder",
    )
    assert memory["source_url"] is None and memory["build_id"] is None
    again = await http.post("/api/projects/shop/memories", json=body, headers=key)
    assert (again.status_code, again.json()["id"]) == (201, memory["id"])
    newest = listed(await http.get("/api/projects/shop/memories"))
    assert [m["id"] for m in newest].count(memory["id"]) == 1 and newest[0]["id"] == memory["id"]
    found = listed(await http.get("/api/projects/shop/memories", params={"q": "dependencies"}))
    assert [m["id"] for m in found] == [memory["id"]]

    decision = {"text": "Slugs are ASCII only", "kind": "decision"}
    other = await http.post("/api/projects/shop/memories", json=decision, headers=key)
    assert other.status_code == 201 and other.json()["id"] != memory["id"]  # other words
    assert (await http.delete(f"/api/projects/shop/memories/{memory['id']}")).status_code == 204
    removed = await http.post("/api/projects/shop/memories", json=body, headers=key)
    assert removed.status_code == 409 and "removed" in removed.json()["detail"]


async def test_memory_changes_count_against_the_rate_limit(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    two_a_minute = settings.model_copy(update={"rate_limit_per_minute": 2})
    app = create_app(two_a_minute, client=env.client)
    async with app.router.lifespan_context(app):
        ids = await seed(app, sessions, "local", "shop", FACTS)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            base = "/api/projects/shop/memories"
            statuses = [(await http.delete(f"{base}/{memory_id}")).status_code for memory_id in ids]
            refused = await http.post(base, json={"text": "We use pytest"})
            reads = [(await http.get(base)).status_code for _ in "ab"]
    assert statuses == [204, 204, 429] and refused.status_code == 429
    assert "Retry-After" in refused.headers and reads == [200, 200]
