"""The API with Stripe billing through the local double, acting as one user at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.deps import User, get_current_user
from api.main import create_app
from cofounder.db import UserAccount
from cofounder.settings import Settings
from tests.doubles.stripe import StripeDouble
from tests.doubles.stripe_webhooks import signed_webhook, stripe_event
from tests.stripe_setup import WEBHOOK_SECRET, stripe_settings

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Billing:
    app: FastAPI
    http: httpx.AsyncClient
    double: StripeDouble
    sessions: Sessions

    def acting_as(self, user: str, admin: bool = False) -> Billing:
        self.app.dependency_overrides[get_current_user] = lambda: User(id=user, admin=admin)
        return self

    async def deliver(self, event: dict[str, Any], **signing: Any) -> httpx.Response:
        body, headers = signed_webhook(event, signing.pop("secret", WEBHOOK_SECRET), **signing)
        return await self.http.post("/api/webhooks/stripe", content=body, headers=headers)

    async def user(self, user_id: str) -> UserAccount:
        async with self.sessions() as session:
            found = await session.get(UserAccount, user_id)
            assert found is not None
            return found

    async def subscribe(self, user: str) -> str:
        """Checkout as `user`, paid on Stripe's page; the subscription's id."""
        answer = await self.acting_as(user).http.post(
            "/api/billing/checkout", json={"tier": "partner"}
        )
        assert answer.status_code == 200, answer.text
        [checkout] = [
            s for s in self.double.state.checkout_sessions.values() if s.url == answer.json()["url"]
        ]
        subscription = self.double.complete_checkout(checkout.id)
        completed = {
            "id": checkout.id,
            "object": "checkout.session",
            "customer": subscription.customer,
            "subscription": subscription.id,
            "client_reference_id": user,
        }
        applied = await self.deliver(stripe_event("checkout.session.completed", completed))
        assert applied.json()["outcome"] == "applied", applied.text
        return subscription.id

    def event(self, kind: str, subscription_id: str, **fields: Any) -> dict[str, Any]:
        obj = self.double.to_json(self.double.state.subscriptions[subscription_id])
        return stripe_event(kind, {**obj, **fields})


@pytest_asyncio.fixture
async def billing(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment, stripe_double: StripeDouble
) -> AsyncIterator[Billing]:
    app = create_app(stripe_settings(settings, stripe_double), client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield Billing(app, http, stripe_double, sessions).acting_as("founder")
