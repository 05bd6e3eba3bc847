"""The JSON of each object the Stripe double answers with, shaped as the request's API version
(`Stripe-Version`) shapes it on Stripe.

Since 2025-03-31 (basil) a subscription's billing period lives on its items, and an invoice
names its subscription under `parent.subscription_details`; before, both sat at the top.
"""

from __future__ import annotations

from typing import Any

import stripe

from tests.doubles.stripe_forms import listing
from tests.doubles.stripe_state import (
    CheckoutSession,
    Customer,
    Invoice,
    MeterEvent,
    PortalSession,
    Price,
    Subscription,
)

# What the double answers without a Stripe-Version header: the SDK's own version.
DEFAULT_VERSION = stripe.api_version
BASIL = "2025-03-31"


def legacy(version: str) -> bool:
    """True for API versions before basil: periods and subscriptions at the top level."""
    return version[:10] < BASIL


def customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "customer",
        "created": c.created,
        "description": c.description,
        "email": c.email,
        "name": c.name,
        "metadata": c.metadata,
        "livemode": False,
        "balance": 0,
        "currency": None,
        "delinquent": False,
        "invoice_prefix": c.id[4:12].upper(),
    }


def price(p: Price) -> dict[str, Any]:
    recurring: dict[str, Any] = {
        "interval": p.interval,
        "interval_count": 1,
        "usage_type": p.usage_type,
        "meter": p.meter,
    }
    return {
        "id": p.id,
        "object": "price",
        "active": True,
        "currency": "usd",
        "product": p.product,
        "type": "recurring",
        "billing_scheme": "per_unit",
        "unit_amount": p.unit_amount,
        "recurring": recurring,
        "created": p.created,
        "livemode": False,
        "metadata": {},
    }


def checkout_session(s: CheckoutSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "checkout.session",
        "mode": s.mode,
        "customer": s.customer,
        "client_reference_id": s.client_reference_id,
        "metadata": s.metadata,
        "status": s.status,
        "payment_status": s.payment_status,
        "subscription": s.subscription,
        "success_url": s.success_url,
        "cancel_url": s.cancel_url,
        "url": s.url if s.status == "open" else None,
        "created": s.created,
        "expires_at": s.created + 86_400,
        "livemode": False,
        "currency": "usd",
    }


def portal_session(s: PortalSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "billing_portal.session",
        "customer": s.customer,
        "return_url": s.return_url,
        "url": s.url,
        "created": s.created,
        "configuration": "bpc_double",
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "flow": None,
    }


def subscription(s: Subscription, version: str) -> dict[str, Any]:
    old = legacy(version)
    items = []
    for item in s.items:
        shaped: dict[str, Any] = {
            "id": item.id,
            "object": "subscription_item",
            "created": item.created,
            "price": price(item.price),
            "quantity": item.quantity,
            "subscription": s.id,
            "metadata": {},
        }
        if not old:
            shaped["current_period_start"] = s.current_period_start
            shaped["current_period_end"] = s.current_period_end
        items.append(shaped)
    shaped_sub: dict[str, Any] = {
        "id": s.id,
        "object": "subscription",
        "customer": s.customer,
        "status": s.status,
        "created": s.created,
        "start_date": s.created,
        "billing_cycle_anchor": s.current_period_start,
        "cancel_at_period_end": False,
        "canceled_at": s.canceled_at,
        "latest_invoice": s.latest_invoice,
        "metadata": s.metadata,
        "items": listing(f"/v1/subscription_items?subscription={s.id}", items),
        "livemode": False,
        "currency": "usd",
    }
    if old:
        shaped_sub["current_period_start"] = s.current_period_start
        shaped_sub["current_period_end"] = s.current_period_end
    return shaped_sub


def invoice(i: Invoice, version: str) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "id": i.id,
        "object": "invoice",
        "customer": i.customer,
        "status": i.status,
        "amount_due": i.amount_due,
        "amount_paid": i.amount_paid,
        "amount_remaining": i.amount_due - i.amount_paid,
        "created": i.created,
        "currency": "usd",
        "livemode": False,
        "metadata": {},
    }
    if legacy(version):
        shaped["subscription"] = i.subscription
        shaped["paid"] = i.status == "paid"
    else:
        details = {"subscription": i.subscription, "metadata": {}}
        shaped["parent"] = (
            {"type": "subscription_details", "subscription_details": details, "quote_details": None}
            if i.subscription
            else None
        )
    return shaped


def meter_event(e: MeterEvent) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": e.created,
        "event_name": e.event_name,
        "identifier": e.identifier,
        "livemode": False,
        "payload": e.payload,
        "timestamp": e.timestamp,
    }
