"""The Stripe double's model: prices, customers, Checkout and portal sessions, subscriptions,
invoices, billing meter events, results kept under idempotency keys, faults and counts.

The server thread changes it while a test reads it and adds to it from its own thread, so every
change happens under `StripeState.lock`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.stripe_forms import new_id

DAY = 86_400
MONTH = 30 * DAY


def now() -> int:
    return int(time.time())


@dataclass
class Price:
    id: str
    usage_type: str = "licensed"  # or "metered": billed from a meter, no quantity
    interval: str = "month"
    unit_amount: int | None = 2900
    product: str = field(default_factory=lambda: new_id("prod_"))
    meter: str | None = None
    created: int = field(default_factory=now)


@dataclass
class Customer:
    id: str
    metadata: dict[str, str] = field(default_factory=dict)
    email: str | None = None
    name: str | None = None
    description: str | None = None
    created: int = field(default_factory=now)


@dataclass
class LineItem:
    price: str
    quantity: int | None


@dataclass
class CheckoutSession:
    id: str
    mode: str
    customer: str | None
    line_items: list[LineItem]
    success_url: str | None
    cancel_url: str | None
    client_reference_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    subscription_metadata: dict[str, str] = field(default_factory=dict)
    status: str = "open"  # open, complete, expired
    payment_status: str = "unpaid"
    subscription: str | None = None
    created: int = field(default_factory=now)

    @property
    def url(self) -> str:
        return f"https://checkout.stripe.com/c/pay/{self.id}"


@dataclass
class PortalSession:
    id: str
    customer: str
    return_url: str | None
    created: int = field(default_factory=now)

    @property
    def url(self) -> str:
        return f"https://billing.stripe.com/p/session/test_{self.id.removeprefix('bps_')}"


@dataclass
class SubscriptionItem:
    id: str
    price: Price
    quantity: int | None
    created: int


@dataclass
class Subscription:
    id: str
    customer: str
    status: str
    items: list[SubscriptionItem]
    created: int
    current_period_start: int
    current_period_end: int
    metadata: dict[str, str] = field(default_factory=dict)
    latest_invoice: str | None = None
    canceled_at: int | None = None


@dataclass
class Invoice:
    id: str
    customer: str
    subscription: str | None
    status: str  # draft, open, paid, uncollectible, void
    amount_due: int
    created: int = field(default_factory=now)

    @property
    def amount_paid(self) -> int:
        return self.amount_due if self.status == "paid" else 0


@dataclass
class MeterEvent:
    identifier: str
    event_name: str
    customer: str
    value: int
    timestamp: int
    payload: dict[str, str]
    created: int = field(default_factory=now)


@dataclass
class Kept:
    """What an idempotency key holds: the request it was first used with and, once that
    finished, its answer (None while it is still running)."""

    fingerprint: tuple[Any, ...]
    request_id: str
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """The next `count` requests to a path answer `status`. `kept`: as a failure inside the
    endpoint, which Stripe keeps under the idempotency key (and replays, 500s included);
    otherwise one in front of it, which no key keeps."""

    count: int
    status: int
    kept: bool = False


@dataclass
class Counts:
    """What the double was asked, for tests that assert "exactly one"."""

    # By "METHOD /route/{param}", e.g. "POST /v1/billing/meter_events"; refused ones too.
    requests: Counter[str] = field(default_factory=Counter)
    # Meter event requests per identifier that passed validation, refused repeats included.
    meter_attempts: Counter[str] = field(default_factory=Counter)
    # Answers replayed from an idempotency key.
    replays: int = 0


@dataclass
class StripeState:
    prices: dict[str, Price] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    checkout_sessions: dict[str, CheckoutSession] = field(default_factory=dict)
    portal_sessions: dict[str, PortalSession] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    # Accepted meter events by identifier: Stripe takes one event per identifier.
    meter_events: dict[str, MeterEvent] = field(default_factory=dict)
    kept: dict[str, Kept] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    # Seconds each answer on a path waits after its request took effect.
    delays: dict[str, float] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_customer(self, metadata: dict[str, str], **fields: Any) -> Customer:
        with self.lock:
            customer = Customer(new_id("cus_"), metadata=metadata, **fields)
            self.customers[customer.id] = customer
            return customer

    def add_subscription(
        self,
        customer: str,
        items: list[LineItem],
        status: str,
        created: int | None = None,
        period: tuple[int, int] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Subscription:
        """A subscription of the customer to the items' prices (each must exist)."""
        with self.lock:
            if customer not in self.customers:
                raise KeyError(f"no customer {customer}")
            created = created if created is not None else now()
            start, end = period or (created, created + MONTH)
            subscription_items = [
                SubscriptionItem(new_id("si_"), self.prices[item.price], item.quantity, created)
                for item in items
            ]
            sub = Subscription(
                new_id("sub_"), customer, status, subscription_items, created, start, end
            )
            sub.metadata = dict(metadata or {})
            self.subscriptions[sub.id] = sub
            return sub

    def add_invoice(self, subscription_id: str, status: str, amount_due: int) -> Invoice:
        with self.lock:
            sub = self.subscriptions[subscription_id]
            invoice = Invoice(new_id("in_"), sub.customer, sub.id, status, amount_due)
            self.invoices[invoice.id] = invoice
            sub.latest_invoice = invoice.id
            return invoice

    def take_fault(self, path: str, route: str) -> Fault | None:
        """The fault armed for this request's path (or route), used up by one."""
        with self.lock:
            for name in (path, route):
                fault = self.faults.get(name)
                if fault is not None and fault.count > 0:
                    fault.count -= 1
                    return fault
            return None

    def meter_totals(self) -> dict[str, int]:
        """The sum of accepted meter event values per customer."""
        with self.lock:
            totals: Counter[str] = Counter()
            for event in self.meter_events.values():
                totals[event.customer] += event.value
            return dict(totals)
