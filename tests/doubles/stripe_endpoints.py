"""The Stripe double's endpoints: each reads the parsed form and answers as Stripe would.

A handler runs under the state's lock and returns an `Answer`; validation failures are answered
with `saved=False`, since Stripe keeps no result under an idempotency key for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.doubles import stripe_shapes as shapes
from tests.doubles.stripe_forms import (
    Answer,
    error,
    invalid,
    listing,
    missing,
    new_id,
    no_such,
)
from tests.doubles.stripe_state import (
    DAY,
    CheckoutSession,
    LineItem,
    MeterEvent,
    PortalSession,
    StripeState,
    now,
)

# How far from now a meter event's timestamp may be: 35 days back, 5 minutes ahead.
METER_PAST = 35 * DAY
METER_FUTURE = 300


@dataclass
class Call:
    params: dict[str, Any]
    ids: dict[str, str]
    version: str


Handler = Callable[[StripeState, Call], Answer]


def ok(body: dict[str, Any]) -> Answer:
    return Answer(200, body)


def create_customer(state: StripeState, call: Call) -> Answer:
    p = call.params
    fields = {name: p.get(name) for name in ("email", "name", "description")}
    return ok(shapes.customer(state.add_customer(dict(p.get("metadata") or {}), **fields)))


def get_customer(state: StripeState, call: Call) -> Answer:
    found = state.customers.get(call.ids["id"])
    return ok(shapes.customer(found)) if found else no_such("customer", call.ids["id"])


def list_customers(state: StripeState, call: Call) -> Answer:
    email = call.params.get("email")
    found = [c for c in state.customers.values() if email is None or c.email == email]
    return ok(listing("/v1/customers", [shapes.customer(c) for c in found]))


def create_checkout(state: StripeState, call: Call) -> Answer:
    p = call.params
    for required in ("mode", "success_url"):
        if not p.get(required):
            return missing(required)
    if p["mode"] != "subscription":
        return invalid("mode", "The double takes Checkout in subscription mode only.")
    if p.get("customer") and p["customer"] not in state.customers:
        return no_such("customer", p["customer"], "customer")
    items = p.get("line_items")
    if not isinstance(items, list) or not items:
        return missing("line_items")
    line_items: list[LineItem] = []
    for number, item in enumerate(items):
        checked = _line_item(state, number, item)
        if isinstance(checked, Answer):
            return checked
        line_items.append(checked)
    session = CheckoutSession(
        new_id("cs_test_", 58),
        p["mode"],
        p.get("customer"),
        line_items,
        p["success_url"],
        p.get("cancel_url"),
        client_reference_id=p.get("client_reference_id"),
        metadata=dict(p.get("metadata") or {}),
        subscription_metadata=dict((p.get("subscription_data") or {}).get("metadata") or {}),
    )
    state.checkout_sessions[session.id] = session
    return ok(shapes.checkout_session(session))


def _line_item(state: StripeState, number: int, item: Any) -> LineItem | Answer:
    """One line item of a subscription Checkout: a known recurring price; a quantity for a
    licensed price, none for a metered one (as Stripe insists)."""
    param = f"line_items[{number}]"
    if not isinstance(item, dict) or not item.get("price"):
        return missing(f"{param}[price]")
    price = state.prices.get(item["price"])
    if price is None:
        return no_such("price", item["price"], f"{param}[price]")
    quantity = item.get("quantity")
    if price.usage_type == "metered" and quantity is not None:
        message = (
            "Quantity should not be specified where usage_type is `metered`."
            f" Remove quantity from `{param}[quantity]`."
        )
        return invalid(f"{param}[quantity]", message)
    if price.usage_type == "licensed" and quantity is None:
        return missing(f"{param}[quantity]")
    return LineItem(price.id, int(quantity) if quantity is not None else None)


def get_checkout(state: StripeState, call: Call) -> Answer:
    found = state.checkout_sessions.get(call.ids["id"])
    if found is None:
        return no_such("checkout.session", call.ids["id"], "session")
    return ok(shapes.checkout_session(found))


def create_portal(state: StripeState, call: Call) -> Answer:
    customer = call.params.get("customer")
    if not customer:
        return missing("customer")
    if customer not in state.customers:
        return no_such("customer", customer, "customer")
    session = PortalSession(new_id("bps_", 24), customer, call.params.get("return_url"))
    state.portal_sessions[session.id] = session
    return ok(shapes.portal_session(session))


def get_subscription(state: StripeState, call: Call) -> Answer:
    found = state.subscriptions.get(call.ids["id"])
    if found is None:
        return no_such("subscription", call.ids["id"])
    return ok(shapes.subscription(found, call.version))


def get_invoice(state: StripeState, call: Call) -> Answer:
    found = state.invoices.get(call.ids["id"])
    if found is None:
        return no_such("invoice", call.ids["id"])
    return ok(shapes.invoice(found, call.version))


def create_meter_event(state: StripeState, call: Call) -> Answer:
    p = call.params
    payload = p.get("payload")
    if not p.get("event_name"):
        return missing("event_name")
    if not isinstance(payload, dict):
        return missing("payload")
    for key in ("stripe_customer_id", "value"):
        if key not in payload:
            return missing(f"payload[{key}]")
    if not str(payload["value"]).lstrip("-").isdigit():
        return invalid("payload[value]", "The value in the payload must be a whole number.")
    timestamp = int(p.get("timestamp") or now())
    if not now() - METER_PAST <= timestamp <= now() + METER_FUTURE:
        message = "Timestamp must be within the past 35 days and no more than 5 minutes ahead."
        return invalid("timestamp", message)
    identifier = p.get("identifier") or new_id("", 24)
    state.counts.meter_attempts[identifier] += 1
    if identifier in state.meter_events:
        return duplicate_identifier(identifier)
    event = MeterEvent(
        identifier,
        p["event_name"],
        payload["stripe_customer_id"],
        int(payload["value"]),
        timestamp,
        dict(payload),
    )
    state.meter_events[identifier] = event
    return ok(shapes.meter_event(event))


def duplicate_identifier(identifier: str) -> Answer:
    """Stripe's refusal of a second event with one identifier: a 400 with no error code, only
    the message says why (as seen in production by others, 2026), and a should-not-retry hint."""
    return error(
        400,
        "invalid_request_error",
        f"An event already exists with identifier {identifier}.",
        headers={"Stripe-Should-Retry": "false"},
    )


# (method, route template, handler): the routes the double serves.
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/customers", create_customer),
    ("GET", "/v1/customers", list_customers),
    ("GET", "/v1/customers/{id}", get_customer),
    ("POST", "/v1/checkout/sessions", create_checkout),
    ("GET", "/v1/checkout/sessions/{id}", get_checkout),
    ("POST", "/v1/billing_portal/sessions", create_portal),
    ("GET", "/v1/subscriptions/{id}", get_subscription),
    ("GET", "/v1/invoices/{id}", get_invoice),
    ("POST", "/v1/billing/meter_events", create_meter_event),
]


def unknown_route(method: str, path: str) -> Answer:
    message = f"Unrecognized request URL ({method}: {path})."
    return error(404, "invalid_request_error", message, saved=False)
