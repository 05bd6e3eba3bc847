"""Our Stripe adapter and the real SDK against the Stripe double.

These pin the double to what the SDK sends and parses (its exception classes included), and
our adapter to what Stripe answers: idempotency keys, meter identifiers, both API versions'
shapes, refusals and outages.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import stripe
from pydantic import SecretStr

from activities.billing import (
    BillingNotAuthorized,
    BillingRefused,
    BillingUnavailable,
    StripeBilling,
)
from activities.billing.stripe_api import customer_key
from tests.conftest import free_port
from tests.doubles.stripe import StripeDouble
from tests.doubles.stripe_webhooks import signed_webhook, stripe_event
from tests.stripe_setup import PLAN_PRICE, USAGE_PRICE, WEBHOOK_SECRET

# `stripe_double` and `stripe_billing` (until conftest.py lists it with the other plugins)

METER_EVENTS = "POST /v1/billing/meter_events"


def sdk(double: StripeDouble, key: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        key or double.api_key,
        base_addresses={"api": double.url, "meter_events": double.url},
        max_network_retries=0,
        http_client=stripe.HTTPXClient(),
    )


async def test_a_user_gets_one_customer_however_many_first_checkouts(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    made = await asyncio.gather(*(stripe_billing.ensure_customer("user_1", None) for _ in range(3)))
    assert len(set(made)) == 1
    [customer] = stripe_double.state.customers.values()
    assert (customer.id, customer.metadata) == (made[0], {"user_id": "user_1"})
    assert stripe_double.counts.replays == 2
    # A user with a customer asks Stripe nothing.
    assert await stripe_billing.ensure_customer("user_1", "cus_known") == "cus_known"
    assert stripe_double.requests("POST /v1/customers") == 3


async def test_a_key_used_again_with_other_parameters_is_refused(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    client = sdk(stripe_double)
    first = await client.v1.customers.create_async(
        {"metadata": {"user_id": "user_2"}}, {"idempotency_key": customer_key("user_1")}
    )
    with pytest.raises(stripe.IdempotencyError) as refused:
        await client.v1.customers.create_async(
            {"metadata": {"user_id": "user_1"}}, {"idempotency_key": customer_key("user_1")}
        )
    assert refused.value.http_status == 400
    with pytest.raises(BillingRefused, match="same parameters"):
        await stripe_billing.ensure_customer("user_1", None)
    again = await client.v1.customers.create_async(
        {"metadata": {"user_id": "user_2"}}, {"idempotency_key": customer_key("user_1")}
    )
    assert again.id == first.id and len(stripe_double.state.customers) == 1


async def test_a_replay_is_the_first_answer_and_says_so(stripe_double: StripeDouble) -> None:
    auth = {"Authorization": f"Bearer {stripe_double.api_key}", "Idempotency-Key": "k-1"}
    async with httpx.AsyncClient(base_url=stripe_double.url, headers=auth) as http:
        first = await http.post("/v1/customers", data={"metadata[user_id]": "u"})
        second = await http.post("/v1/customers", data={"metadata[user_id]": "u"})
        missing = await http.post(
            "/v1/checkout/sessions", data={}, headers={"Idempotency-Key": "k-2"}
        )
    assert first.json() == second.json() and second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    error = missing.json()["error"]
    assert (missing.status_code, error["type"], error["code"]) == (
        400,
        "invalid_request_error",
        "parameter_missing",
    )
    assert "k-2" not in stripe_double.state.kept  # a validation failure keeps nothing


async def test_checkout_and_portal_answer_with_urls(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    customer = await stripe_billing.ensure_customer("user_1", None)
    url = await stripe_billing.checkout(
        customer, "user_1", PLAN_PRICE, USAGE_PRICE, "https://app/ok", "https://app/no"
    )
    [session] = stripe_double.state.checkout_sessions.values()
    assert url == session.url and url.startswith("https://checkout.stripe.com/")
    assert (session.mode, session.customer, session.client_reference_id) == (
        "subscription",
        customer,
        "user_1",
    )
    assert session.metadata == {"user_id": "user_1"}
    assert [(i.price, i.quantity) for i in session.line_items] == [
        (PLAN_PRICE, 1),
        (USAGE_PRICE, None),
    ]
    portal = await stripe_billing.portal(customer, "https://app/billing")
    assert portal.startswith("https://billing.stripe.com/p/session/")
    with pytest.raises(BillingRefused, match="No such customer"):
        await stripe_billing.portal("cus_nobody", "https://app/billing")


@pytest.mark.parametrize("version", [None, "2024-06-20"], ids=["current", "before basil"])
async def test_subscriptions_and_invoices_read_in_either_api_version(
    stripe_double: StripeDouble, version: str | None
) -> None:
    billing = StripeBilling(
        SecretStr(stripe_double.api_key), stripe_double.url, stripe_version=version
    )
    customer = stripe_double.add_customer({"user_id": "user_1"})
    sub = stripe_double.create_subscription(
        customer.id, [PLAN_PRICE, USAGE_PRICE], status="past_due", period=(1000, 2000)
    )
    invoice = stripe_double.create_invoice(sub.id, status="open")
    state = await billing.subscription(sub.id)
    assert (state.id, state.customer, state.status) == (sub.id, customer.id, "past_due")
    assert state.prices == (PLAN_PRICE, USAGE_PRICE)
    assert (state.created, state.current_period_start, state.current_period_end) == (
        sub.created,
        1000,
        2000,
    )
    assert await billing.invoice_subscription(invoice.id) == sub.id
    await billing.aclose()


async def test_complete_checkout_subscribes_the_customer(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    customer = await stripe_billing.ensure_customer("user_1", None)
    await stripe_billing.checkout(customer, "user_1", PLAN_PRICE, None, "https://a", "https://b")
    [session] = stripe_double.state.checkout_sessions.values()
    sub = stripe_double.complete_checkout(session.id)
    state = await stripe_billing.subscription(sub.id)
    assert (state.customer, state.status, state.prices) == (customer, "active", (PLAN_PRICE,))
    assert sub.latest_invoice is not None
    assert await stripe_billing.invoice_subscription(sub.latest_invoice) == sub.id
    stripe_double.set_subscription_status(sub.id, "canceled")
    assert (await stripe_billing.subscription(sub.id)).status == "canceled"


async def test_a_meter_identifier_is_taken_once(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    now = int(time.time())

    async def send(key: str) -> str:
        return await stripe_billing.send_meter_event("usage", "cus_1", 25, "row-1", now, key)

    assert [await send("a"), await send("a"), await send("b")] == [
        "accepted",
        "accepted",  # the first answer, replayed under its key
        "duplicate",  # another key: Stripe refuses the identifier
    ]
    assert stripe_double.meter_totals() == {"cus_1": 25}
    assert stripe_double.counts.meter_attempts["row-1"] == 2
    with pytest.raises(stripe.InvalidRequestError, match="already exists with identifier"):
        await sdk(stripe_double).v1.billing.meter_events.create_async(
            {"event_name": "usage", "payload": {"stripe_customer_id": "c", "value": "1"}}
            | {"identifier": "row-1"}
        )


async def test_a_wrong_key_is_refused_and_never_echoed(stripe_double: StripeDouble) -> None:
    wrong = "sk_test_wrong_key_0123456789"
    with pytest.raises(stripe.AuthenticationError) as raw:
        await sdk(stripe_double, wrong).v1.customers.retrieve_async("cus_1")
    assert raw.value.http_status == 401
    billing = StripeBilling(SecretStr(wrong), stripe_double.url)
    with pytest.raises(BillingNotAuthorized) as refused:
        await billing.ensure_customer("user_1", None)
    assert not refused.value.retryable and wrong[-4:] not in str(refused.value)
    async with httpx.AsyncClient(base_url=stripe_double.url) as http:
        anonymous = await http.get("/v1/customers/cus_1")
    assert anonymous.status_code == 401 and "API key" in anonymous.json()["error"]["message"]
    await billing.aclose()


@pytest.mark.parametrize("status", [500, 503, 429, 409])
async def test_outages_are_unavailable_and_refusals_are_not(
    stripe_double: StripeDouble, stripe_billing: StripeBilling, status: int
) -> None:
    stripe_double.fail_next("/v1/billing/meter_events", status=status)
    with pytest.raises(BillingUnavailable) as failed:
        await stripe_billing.send_meter_event("usage", "cus_1", 1, "row-1", int(time.time()), "k")
    assert failed.value.retryable
    # The failure was in front of the endpoint: the same key now goes through.
    sent = await stripe_billing.send_meter_event(
        "usage", "cus_1", 1, "row-1", int(time.time()), "k"
    )
    assert sent == "accepted"
    long_ago = int(time.time()) - 40 * 86_400
    with pytest.raises(BillingRefused, match="Timestamp"):
        await stripe_billing.send_meter_event("usage", "cus_1", 1, "row-2", long_ago, "k2")


async def test_a_5xx_kept_under_a_key_is_replayed(
    stripe_double: StripeDouble, stripe_billing: StripeBilling
) -> None:
    stripe_double.fail_next("/v1/billing/meter_events", status=500, kept=True)
    at = int(time.time())
    for _ in range(2):
        with pytest.raises(BillingUnavailable):
            await stripe_billing.send_meter_event("usage", "cus_1", 1, "row-1", at, "key-1")
    assert await stripe_billing.send_meter_event("usage", "cus_1", 1, "row-1", at, "key-2") == (
        "accepted"
    )


async def test_an_unreachable_stripe_is_unavailable() -> None:
    billing = StripeBilling(SecretStr("sk_test_x"), f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BillingUnavailable, match="could not be reached"):
        await billing.subscription("sub_1")
    await billing.aclose()


def test_webhooks_are_signed_as_stripe_signs_them(stripe_double: StripeDouble) -> None:
    sub = stripe_double.create_subscription(stripe_double.add_customer().id, [PLAN_PRICE])
    event = stripe_event("customer.subscription.updated", stripe_double.to_json(sub))
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    verified = stripe.Webhook.construct_event(
        body.decode(), headers["Stripe-Signature"], WEBHOOK_SECRET
    )
    assert verified["data"]["object"]["id"] == sub.id and verified["type"] == event["type"]
    tampered = json.dumps({**event, "type": "invoice.paid"})
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, headers["Stripe-Signature"], WEBHOOK_SECRET)
    _, old = signed_webhook(event, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), old["Stripe-Signature"], WEBHOOK_SECRET)
