"""A project's memory on its dashboard page, without a browser: listed with where each came
from, searched, removed and stated by htmx posts (or plain ones), refused in the API's words."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.memory import NewMemory
from tests.test_memory_api import COMMENT, FACTS, listed, seed

Sessions = async_sessionmaker[AsyncSession]
HTMX = {"HX-Request": "true"}
PAGE = "/app/projects/shop"


async def test_the_project_page_shows_what_it_remembers_and_where_from(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    odd = NewMemory(key="x", kind="convention", text="<b>tabs</b>", source="javascript:alert(1)")
    ids = await seed(http_app, sessions, "local", "shop", [*FACTS, odd])
    page = await http.get(PAGE)
    assert page.status_code == 200, page.text
    assert "What this project remembers" in page.text
    for fact in FACTS:
        assert fact.text in page.text
    assert '<a href="/app/builds/b1">build <code>b1</code></a>' in page.text
    assert f'<a href="{COMMENT}" rel="noopener">review comment</a>' in page.text
    # Escaped, and a source that is neither a web link nor a build's is shown, not linked.
    assert "&lt;b&gt;tabs&lt;/b&gt;" in page.text
    assert "<code>javascript:alert(1)</code>" in page.text and "javascript%3A" not in page.text
    for memory_id in ids:
        assert f'hx-post="{PAGE}/memories/{memory_id}/remove"' in page.text


async def test_a_search_shows_the_best_matches(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    await seed(http_app, sessions, "local", "shop", FACTS)
    part = await http.get(f"{PAGE}/memories", params={"q": "pytest"}, headers=HTMX)
    assert part.status_code == 200 and "<html" not in part.text
    assert FACTS[0].text in part.text and FACTS[2].text not in part.text
    assert 'value="pytest"' in part.text and "Show the newest" in part.text
    page = await http.get(PAGE, params={"q": "underscores"})  # the plain form's search
    assert FACTS[2].text in page.text and FACTS[0].text not in page.text
    none = await http.get(f"{PAGE}/memories", params={"q": "kubernetes"}, headers=HTMX)
    assert "Nothing remembered matches “kubernetes”" in none.text


async def test_remove_takes_a_memory_off_the_page_and_out_of_recall(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    ids = await seed(http_app, sessions, "local", "shop", FACTS)
    remove = f"{PAGE}/memories/{ids[0]}/remove"
    answer = await http.post(remove, data={"q": "pytest"}, headers=HTMX)
    assert answer.status_code == 200, answer.text
    assert "Removed: later builds no longer recall it." in answer.text
    assert FACTS[0].text not in answer.text and 'value="pytest"' in answer.text  # search kept
    assert ids[0] not in [m["id"] for m in listed(await http.get("/api/projects/shop/memories"))]
    again = await http.post(remove, data={}, headers=HTMX)
    assert again.status_code == 404 and f"project shop has no memory {ids[0]}" in again.text
    assert 'id="memories"' in again.text  # the section again, with the refusal in it

    plain = await http.post(f"{PAGE}/memories/{ids[1]}/remove", data={})
    assert (plain.status_code, plain.headers["location"]) == (303, PAGE)
    assert [m["id"] for m in listed(await http.get("/api/projects/shop/memories"))] == [ids[2]]


async def test_a_remove_from_another_site_is_refused(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    ids = await seed(http_app, sessions, "local", "shop", FACTS)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        answer = await http.post(f"{PAGE}/memories/{ids[0]}/remove", data={}, headers=headers)
        assert answer.status_code == 403 and "another site" in answer.text
    assert len(listed(await http.get("/api/projects/shop/memories"))) == len(FACTS)


async def test_a_founder_states_a_convention_on_the_page(
    http: httpx.AsyncClient, http_app: FastAPI, sessions: Sessions
) -> None:
    await seed(http_app, sessions, "local", "shop", FACTS)
    blank = await http.post(f"{PAGE}/memories", data={"text": "   ", "key": "k1"}, headers=HTMX)
    assert blank.status_code == 422 and "text must contain a character other than" in blank.text
    bad = await http.post(f"{PAGE}/memories", data={"text": "x", "kind": "outcome"}, headers=HTMX)
    assert bad.status_code == 422 and "kind:" in bad.text
    assert "<textarea" in bad.text and ">x</textarea>" in bad.text  # kept, to be corrected

    form = {"text": "No new dependencies", "kind": "convention", "key": "k2"}
    for _ in "twice":  # a double-submitted form remembers once
        made = await http.post(f"{PAGE}/memories", data=form, headers=HTMX)
        assert made.status_code == 200, made.text
        assert "Remembered" in made.text and "stated by you" in made.text
    newest = listed(await http.get("/api/projects/shop/memories"))
    assert [m["text"] for m in newest].count("No new dependencies") == 1
    assert (newest[0]["kind"], newest[0]["source"]) == ("convention", "founder")
