"""GitHub's webhooks at the front door: signed with the App's secret over the raw body, each
delivery applied once, installations and their repositories kept as GitHub tells them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.main import create_app
from cofounder.db import GitHubInstallation, GitHubRepository, WebhookDelivery
from cofounder.settings import Settings
from tests.github_fixtures import SECRET, deliver
from tests.helpers import count

ACME = {"login": "acme", "id": 9001, "type": "Organization"}
SENDER = {"login": "founder", "id": 42, "type": "User"}


def repo(repo_id: int, name: str) -> dict[str, Any]:
    return {"id": repo_id, "name": name, "full_name": f"acme/{name}", "private": True}


def installation(action: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "installation": {"id": 31337, "account": ACME},
        "sender": SENDER,
    } | extra


@pytest_asyncio.fixture
async def hooks(settings: Settings, env: Any, sessions: Any) -> AsyncIterator[httpx.AsyncClient]:
    signed = settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET)})
    served = create_app(signed, client=env.client)
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def repositories(sessions: async_sessionmaker[AsyncSession]) -> dict[int, str]:
    async with sessions() as session:
        rows = (await session.scalars(select(GitHubRepository))).all()
    return {row.id: row.full_name for row in rows}


async def test_an_unsigned_or_badly_signed_delivery_changes_nothing(
    hooks: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = installation("created", repositories=[repo(101, "shop")])
    unsigned = await deliver(hooks, "installation", payload, sign=False)
    forged = await deliver(hooks, "installation", payload, secret="guessed")
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    assert forged.json() == {"detail": "missing or bad X-Hub-Signature-256"}
    assert await count(sessions, WebhookDelivery) == 0 and await repositories(sessions) == {}
    # Signed, but its body changed on the way: the signature no longer matches.
    good = await deliver(hooks, "installation", payload, delivery="d-1")
    tampered = json.dumps(payload).encode().replace(b"shop", b"evil")
    headers = dict(good.request.headers) | {"X-GitHub-Delivery": "d-2"}
    again = await hooks.post("/api/webhooks/github", content=tampered, headers=headers)
    assert again.status_code == 401 and await repositories(sessions) == {101: "acme/shop"}


async def test_installations_and_their_repositories_follow_github(
    hooks: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = installation("created", repositories=[repo(101, "shop"), repo(102, "blog")])
    answer = await deliver(hooks, "installation", created, delivery="d-created")
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
    async with sessions() as session:
        row = await session.get(GitHubInstallation, 31337)
    assert row is not None and (row.account, row.account_type) == ("acme", "Organization")
    assert await repositories(sessions) == {101: "acme/shop", 102: "acme/blog"}

    added = installation("added", repositories_added=[repo(103, "docs")], repositories_removed=[])
    await deliver(hooks, "installation_repositories", added, delivery="d-added")
    removed = installation(
        "removed", repositories_added=[], repositories_removed=[repo(102, "blog")]
    )
    await deliver(hooks, "installation_repositories", removed, delivery="d-removed")
    assert await repositories(sessions) == {101: "acme/shop", 103: "acme/docs"}

    # GitHub redelivers the first one (or someone replays it): no second effect.
    replayed = await deliver(hooks, "installation", created, delivery="d-created")
    assert replayed.json()["outcome"] == "duplicate"
    assert await repositories(sessions) == {101: "acme/shop", 103: "acme/docs"}

    await deliver(hooks, "installation", installation("suspend"), delivery="d-suspend")
    async with sessions() as session:
        suspended = await session.get(GitHubInstallation, 31337)
    assert suspended is not None and suspended.suspended
    await deliver(hooks, "installation", installation("deleted"), delivery="d-deleted")
    assert await repositories(sessions) == {} and await count(sessions, GitHubInstallation) == 0
    assert await count(sessions, WebhookDelivery) == 5  # the replay added no record


async def test_other_events_are_recorded_and_bad_bodies_refused(
    hooks: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ping = await deliver(hooks, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert ping.status_code == 200 and ping.json()["outcome"] == "ignored"
    not_json = await deliver(hooks, "installation", b"not json")
    no_installation = await deliver(hooks, "installation", {"action": "created"})
    assert (not_json.status_code, no_installation.status_code) == (400, 400)
    assert await count(sessions, WebhookDelivery) == 1


async def test_events_about_no_builds_pull_request_change_nothing_and_are_recorded(
    hooks: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = repo(101, "shop")
    pull = {"number": 3, "state": "closed", "merged": True, "merge_commit_sha": "a" * 40}
    closed = {"action": "closed", "number": 3, "pull_request": pull, "repository": shop}
    comment = {
        "id": 5,
        "body": "Looks good",
        "user": SENDER,
        "author_association": "OWNER",
        "html_url": "https://github.com/acme/shop/pull/3#issuecomment-5",
    }
    commented = {
        "action": "created",
        "issue": {"number": 3, "pull_request": {"url": "https://api.github.com/x"}},
        "comment": comment,
        "repository": shop,
    }
    suite = {"id": 8, "head_sha": "a" * 40, "conclusion": "failure", "pull_requests": []}
    failed = {"action": "completed", "check_suite": suite, "repository": shop}
    # No build opened pull request 3; failing checks are not feedback unless asked for.
    for event, payload in (
        ("pull_request", closed),
        ("issue_comment", commented),
        ("check_suite", failed),
    ):
        answer = await deliver(hooks, event, payload)
        assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored"), event
    assert await count(sessions, WebhookDelivery) == 3


async def test_without_a_secret_every_delivery_is_refused(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    answer = await http.post(
        "/api/webhooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d", "X-Hub-Signature-256": "x"},
    )
    assert answer.status_code == 401 and "GITHUB_WEBHOOK_SECRET" in answer.json()["detail"]
    assert await count(sessions, WebhookDelivery) == 0
