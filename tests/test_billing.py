"""Stripe billing through the real SDK against the local double: checkout, the portal, usage,
and signed webhooks applied once each, by the subscription's current state."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from cofounder.db import StripeEvent
from tests.billing_fixtures import Billing
from tests.doubles.stripe_webhooks import signed_webhook, stripe_event
from tests.stripe_setup import WEBHOOK_SECRET

SUBSCRIPTION_READS = "GET /v1/subscriptions/{id}"


async def test_checkout_subscribes_once_and_the_plan_applies(billing: Billing) -> None:
    portal = await billing.http.post("/api/billing/portal")
    assert portal.status_code == 409 and "no subscription yet" in portal.json()["detail"]
    unsold = await billing.http.post("/api/billing/checkout", json={"tier": "cto"})
    assert unsold.status_code == 409 and "not sold monthly" in unsold.json()["detail"]
    subscription = await billing.subscribe("founder")
    again = await billing.http.post("/api/billing/checkout", json={"tier": "partner"})
    assert again.status_code == 200
    assert billing.double.requests("POST /v1/customers") == 1  # one customer, made once
    user = await billing.user("founder")
    assert (user.tier, user.subscription_status, user.billing_period) == (
        "partner",
        "active",
        "monthly",
    )
    assert user.stripe_subscription_id == subscription and user.metered_since is not None
    portal = await billing.http.post("/api/billing/portal")
    assert portal.status_code == 200 and portal.json()["url"].startswith("http")
    usage = (await billing.http.get("/api/billing/usage")).json()
    assert usage["plan"]["tier"] == "partner" and usage["plan"]["limits"]["projects"] == 10
    assert usage["pending"] == {"rows": 0, "cost_micro_usd": 0}


async def test_webhooks_must_be_signed_recently_with_our_secret(billing: Billing) -> None:
    event = stripe_event("invoice.paid", {"id": "in_1", "object": "invoice"})
    wrong = await billing.deliver(event, secret="whsec_someone_else")
    assert wrong.status_code == 401 and "Stripe-Signature" in wrong.json()["detail"]
    stale = await billing.deliver(event, timestamp=int(time.time()) - 400)
    assert stale.status_code == 401 and "too old" in wrong.json()["detail"] + stale.json()["detail"]
    unsigned = await billing.http.post("/api/webhooks/stripe", json=event)
    assert unsigned.status_code == 401
    body, headers = signed_webhook(b"not json", WEBHOOK_SECRET)
    garbage = await billing.http.post("/api/webhooks/stripe", content=body, headers=headers)
    assert garbage.status_code == 400
    async with billing.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StripeEvent)) == 0


async def test_a_redelivered_event_has_no_second_effect(billing: Billing) -> None:
    subscription = await billing.subscribe("founder")
    reads = billing.double.requests(SUBSCRIPTION_READS)
    billing.double.set_subscription_status(subscription, "past_due")
    event = billing.event("customer.subscription.updated", subscription)
    assert (await billing.deliver(event)).json()["outcome"] == "applied"
    held = await billing.user("founder")
    assert held.billing_hold and held.billing_version == 1
    assert (await billing.deliver(event)).json()["outcome"] == "duplicate"
    assert (await billing.user("founder")).billing_version == 1
    assert billing.double.requests(SUBSCRIPTION_READS) == reads + 1


async def test_events_out_of_order_settle_on_the_current_state(billing: Billing) -> None:
    subscription = await billing.subscribe("founder")
    billing.double.set_subscription_status(subscription, "past_due")
    failed = billing.double.create_invoice(subscription, status="open")
    payment_failed = stripe_event("invoice.payment_failed", billing.double.to_json(failed))
    billing.double.set_subscription_status(subscription, "active")
    paid = billing.double.create_invoice(subscription, status="paid")
    invoice_paid = stripe_event("invoice.paid", billing.double.to_json(paid))
    # The payment that fixed it arrives first, the failure after: still not held.
    assert (await billing.deliver(invoice_paid)).json()["outcome"] == "applied"
    assert (await billing.deliver(payment_failed)).json()["outcome"] == "applied"
    user = await billing.user("founder")
    assert not user.billing_hold and user.billing_version == 0 and user.tier == "partner"


async def test_a_failed_handler_is_not_recorded_so_the_retry_applies_it(billing: Billing) -> None:
    subscription = await billing.subscribe("founder")
    billing.double.set_subscription_status(subscription, "past_due")
    event = billing.event("customer.subscription.updated", subscription)
    billing.double.fail_next(SUBSCRIPTION_READS, status=500)
    failed = await billing.deliver(event)
    assert failed.status_code == 503, failed.text
    assert not (await billing.user("founder")).billing_hold
    assert (await billing.deliver(event)).json()["outcome"] == "applied"
    assert (await billing.user("founder")).billing_hold


async def test_a_deleted_subscription_returns_to_the_free_plan(billing: Billing) -> None:
    subscription = await billing.subscribe("founder")
    billing.double.set_subscription_status(subscription, "canceled")
    deleted = billing.event("customer.subscription.deleted", subscription)
    assert (await billing.deliver(deleted)).json()["outcome"] == "applied"
    user = await billing.user("founder")
    default = billing.app.state.settings.default_tier
    assert default != "partner"
    assert (user.tier, user.subscription_status, user.billing_hold) == (default, "canceled", False)


async def test_admins_see_every_user_and_others_see_nothing(billing: Billing) -> None:
    await billing.subscribe("founder")
    assert (await billing.http.get("/api/admin/users")).status_code == 404
    assert (
        await billing.http.put("/api/admin/users/founder/plan", json={"tier": "cto"})
    ).status_code == 404
    admin = billing.acting_as("ops", admin=True)
    users = (await admin.http.get("/api/admin/users")).json()["users"]
    assert {"founder"} <= {user["id"] for user in users}
    changed = await admin.http.put("/api/admin/users/founder/plan", json={"tier": "cto"})
    assert changed.status_code == 200 and changed.json()["plan"]["tier"] == "cto"
    bad = await admin.http.put("/api/admin/users/founder/plan", json={"tier": "gold"})
    assert bad.status_code == 409 and "no tier" in bad.json()["detail"]
    usage = await admin.http.get("/api/admin/users/founder/usage")
    assert usage.status_code == 200 and usage.json()["plan"]["tier"] == "cto"
    assert (await admin.http.get("/api/admin/users/nobody/usage")).status_code == 404
