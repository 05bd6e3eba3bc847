"""A local double of Stripe's HTTP API (v1, form-encoded), for exercising the real `stripe` SDK
offline: customers, Checkout and portal sessions, subscriptions, invoices and billing meter
events, behind `Authorization: Bearer <secret key>`.

It keeps what Stripe keeps: a POST's result under its `Idempotency-Key` (the same key and
parameters replay the first answer, 5xx included; other parameters are refused with an
`idempotency_error`; no result is kept for a validation failure), and one meter event per
`identifier`. It counts what it was asked, and a test can make it fail or answer slowly.

    with StripeDouble() as double:
        client = stripe.StripeClient(double.api_key, base_addresses=double.base_addresses,
                                     max_network_retries=0, http_client=stripe.HTTPXClient())
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ServerThread
from tests.doubles import stripe_shapes as shapes
from tests.doubles.stripe_endpoints import Call, Handler, unknown_route
from tests.doubles.stripe_forms import Answer, new_id, parse_form, server_error
from tests.doubles.stripe_gate import idempotent, route_of, unauthorized
from tests.doubles.stripe_state import (
    Counts,
    Customer,
    Fault,
    Invoice,
    LineItem,
    Price,
    StripeState,
    Subscription,
    now,
)

API_KEY = "sk_test_double_51NcofounderKeyForTests"


class StripeDouble:
    """Stripe for one secret key; use it as a context manager (it serves itself)."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.state = StripeState()
        route = Route("/{path:path}", self._serve, methods=["GET", "POST", "DELETE"])
        self._server = ServerThread(Starlette(routes=[route]))

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def base_addresses(self) -> dict[str, str]:
        """For `StripeClient(base_addresses=...)`."""
        return {"api": self.url, "meter_events": self.url}

    @property
    def counts(self) -> Counts:
        return self.state.counts

    def requests(self, route: str) -> int:
        """How often a route was asked, e.g. requests("POST /v1/billing/meter_events")."""
        return self.state.counts.requests[route]

    async def _serve(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        route, handler, ids = route_of(method, path)
        with self.state.lock:
            self.state.counts.requests[route] += 1
        refused = unauthorized(self.api_key, request.headers.get("authorization", ""))
        if refused is not None:
            return _respond(refused)
        body = (await request.body()).decode() if method == "POST" else request.url.query
        fault = self.state.take_fault(path, route)
        if fault is not None and not fault.kept:  # in front of the endpoint: no key keeps it
            return _respond(server_error(fault.status))
        key = request.headers.get("idempotency-key") if method == "POST" else None
        version = request.headers.get("stripe-version") or shapes.DEFAULT_VERSION
        call = Call(parse_form(body), ids, version)
        answer = idempotent(
            self.state,
            key,
            (method, path, body),
            lambda: self._run(handler, call, fault, method, path),
        )
        await asyncio.sleep(self.state.delays.get(path, self.state.delays.get(route, 0)))
        return _respond(answer)

    def _run(
        self, handler: Handler | None, call: Call, fault: Fault | None, method: str, path: str
    ) -> Answer:
        if fault is not None:  # inside the endpoint: kept under the key like any result
            return server_error(fault.status)
        if handler is None:
            return unknown_route(method, path)
        with self.state.lock:
            return handler(self.state, call)

    # What a test does to the double.

    def add_price(
        self,
        price_id: str | None = None,
        usage_type: str = "licensed",
        interval: str = "month",
        unit_amount: int | None = 2900,
    ) -> Price:
        """A recurring price; `usage_type="metered"` for one billed from a meter."""
        with self.state.lock:
            price = Price(price_id or new_id("price_", 24), usage_type, interval, unit_amount)
            if usage_type == "metered":
                price.unit_amount, price.meter = None, new_id("mtr_", 24)
            self.state.prices[price.id] = price
            return price

    def add_customer(self, metadata: dict[str, str] | None = None, **fields: Any) -> Customer:
        return self.state.add_customer(dict(metadata or {}), **fields)

    def create_subscription(
        self,
        customer: str,
        prices: list[str],
        status: str = "active",
        created: int | None = None,
        period: tuple[int, int] | None = None,
    ) -> Subscription:
        """The customer subscribed to `prices` (metered ones without a quantity)."""
        with self.state.lock:
            items = [
                LineItem(p, None if self.state.prices[p].usage_type == "metered" else 1)
                for p in prices
            ]
            return self.state.add_subscription(customer, items, status, created, period)

    def set_subscription_status(self, subscription_id: str, status: str) -> Subscription:
        with self.state.lock:
            sub = self.state.subscriptions[subscription_id]
            sub.status = status
            if status == "canceled":
                sub.canceled_at = now()
            return sub

    def create_invoice(
        self, subscription_id: str, status: str = "paid", amount_due: int = 2900
    ) -> Invoice:
        """An invoice of the subscription: `paid`, or `open` (its payment failed)."""
        return self.state.add_invoice(subscription_id, status, amount_due)

    def complete_checkout(self, session_id: str, status: str = "active") -> Subscription:
        """The founder paid on the Checkout page: the session's customer (made now if it had
        none) is subscribed to its line items, with a paid first invoice."""
        with self.state.lock:
            session = self.state.checkout_sessions[session_id]
            if session.status != "open":
                raise ValueError(f"checkout session {session_id} is {session.status}")
            if session.customer is None:
                session.customer = self.state.add_customer({}).id
            sub = self.state.add_subscription(
                session.customer,
                session.line_items,
                status,
                metadata=session.subscription_metadata,
            )
            self.state.add_invoice(sub.id, "paid", 2900)
            session.status, session.payment_status, session.subscription = (
                "complete",
                "paid",
                sub.id,
            )
            return sub

    def fail_next(self, path: str, count: int = 1, status: int = 500, kept: bool = False) -> None:
        """The next `count` requests to `path` ("/v1/billing/meter_events", or a route such as
        "GET /v1/subscriptions/{id}") answer `status`. `kept`: the failure happens inside the
        endpoint, and a retry with the same idempotency key gets it again, as on Stripe."""
        with self.state.lock:
            self.state.faults[path] = Fault(count, status, kept)

    def delay_answers(self, path: str, seconds: float) -> None:
        """Every answer on `path` (or route) waits `seconds` after its request took effect,
        so a caller that dies meanwhile never hears of it; 0 undoes it."""
        with self.state.lock:
            self.state.delays[path] = seconds

    def meter_totals(self) -> dict[str, int]:
        """Accepted meter event values summed per customer."""
        return self.state.meter_totals()

    def to_json(self, obj: Any, version: str = shapes.DEFAULT_VERSION) -> dict[str, Any]:
        """An object as the API (of `version`) shows it, e.g. for a webhook event."""
        shape = {
            "Subscription": lambda: shapes.subscription(obj, version),
            "Invoice": lambda: shapes.invoice(obj, version),
            "CheckoutSession": lambda: shapes.checkout_session(obj),
            "Customer": lambda: shapes.customer(obj),
        }
        with self.state.lock:
            return shape[type(obj).__name__]()

    def __enter__(self) -> StripeDouble:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)


def _respond(answer: Answer) -> Response:
    headers = {"Request-Id": new_id("req_"), **answer.headers}
    body = json.dumps(answer.body, indent=2)
    return Response(body, answer.status, headers=headers, media_type="application/json")
