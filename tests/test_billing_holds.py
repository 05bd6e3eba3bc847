"""A failed payment holds the owner's running builds before their next model call, payment
releases them, and a deleted subscription cancels them: Stripe's webhooks through the API to
the builds' workflows, on a real worker."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from temporalio.worker import Worker

from cofounder.db import Build, LedgerEntry
from tests.billing_fixtures import Billing
from tests.doubles.stripe_webhooks import stripe_event
from tests.helpers import api_status


async def ledger_rows(billing: Billing, build_id: str) -> int:
    async with billing.sessions() as session:
        query = select(func.count()).select_from(LedgerEntry)
        return int(await session.scalar(query.where(LedgerEntry.build_id == build_id)) or 0)


async def row_status(billing: Billing, build_id: str, expected: str, wait: float = 15) -> str:
    """The build row's status once it is `expected`, or as it is after `wait` seconds."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with billing.sessions() as session:
            row = await session.get(Build, build_id)
            status = row.status if row is not None else "missing"
        if status == expected or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.1)


async def test_a_failed_payment_holds_builds_and_payment_releases_them(
    billing: Billing, worker: list[Worker]
) -> None:
    subscription = await billing.subscribe("founder")
    goal = {"project": "shop", "goal": "a slugify library with tests", "require_approval": True}
    build_id = (await billing.http.post("/api/builds", json=goal)).json()["id"]
    await api_status(billing.http, build_id, "awaiting_approval")
    billing.double.set_subscription_status(subscription, "past_due")
    failed = billing.double.create_invoice(subscription, status="open")
    event = billing.double.to_json(failed)
    held = await billing.deliver(stripe_event("invoice.payment_failed", event))
    assert held.json()["outcome"] == "applied", held.text
    await billing.http.post(f"/api/builds/{build_id}/approve", json={"approved": True})
    await api_status(billing.http, build_id, "on_hold")
    spent = await ledger_rows(billing, build_id)
    await asyncio.sleep(1.0)
    assert await ledger_rows(billing, build_id) == spent  # a held build calls no model
    refused = await billing.http.post("/api/builds", json={**goal, "require_approval": False})
    assert refused.status_code == 402 and refused.json()["limit"] == "payment"

    billing.double.set_subscription_status(subscription, "active")
    paid = billing.double.to_json(billing.double.create_invoice(subscription, status="paid"))
    assert (await billing.deliver(stripe_event("invoice.paid", paid))).status_code == 200
    done = await api_status(billing.http, build_id, "in_review", timeout=120)
    assert done["cost"]["usd"] > 0 and await ledger_rows(billing, build_id) > spent

    billing.double.set_subscription_status(subscription, "canceled")
    deleted = billing.event("customer.subscription.deleted", subscription)
    assert (await billing.deliver(deleted)).json()["outcome"] == "applied"
    await api_status(billing.http, build_id, "cancelled", timeout=60)
    # The live view says so first; the row follows once the sandbox is closed and the bill
    # settled.
    assert await row_status(billing, build_id, "cancelled") == "cancelled"
