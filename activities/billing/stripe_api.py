"""Our one Stripe adapter: customers, Checkout, the customer portal, subscriptions, invoices and
billing meter events, through the real SDK's async methods.

The secret key lives only inside the SDK's client; it is never logged or put in an error. The
SDK does not retry on its own (`max_network_retries=0`): Temporal's retries and the callers'
decide when to ask again, with idempotency keys that make asking again safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import stripe
from pydantic import SecretStr

from activities.billing.errors import BillingRefused, stripe_errors
from cofounder.settings import Settings

# One Stripe request may take this long; a slower one is a timeout, retried as unavailable.
REQUEST_TIMEOUT_SECONDS = 20.0
# Stripe takes one meter event per identifier and refuses a second: API v1 says so only in the
# message of a 400 without a code (as others saw it in production, 2026), v2 with this code.
DUPLICATE_METER_CODE = "duplicate_meter_event"
DUPLICATE_METER_MESSAGE = "already exists with identifier"

MeterOutcome = Literal["accepted", "duplicate"]


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as Stripe shows it now; the periods are None when it shows none."""

    id: str
    customer: str
    status: str
    # The price of each of its items (the plan's, and the metered usage price).
    prices: tuple[str, ...]
    created: int
    current_period_start: int | None = None
    current_period_end: int | None = None


def customer_key(user_id: str) -> str:
    """The idempotency key of a user's customer: two first checkouts at once make one."""
    return f"cofounder-customer-{user_id}"


class StripeBilling:
    """Stripe for one account (secret key), optionally at another address (a local double)."""

    def __init__(
        self,
        secret_key: SecretStr,
        api_base: str | None = None,
        *,
        stripe_version: str | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        # The SDK logs two lines per request at INFO, and its error lines carry Stripe's words,
        # which for a wrong key echo part of it: our own log lines say what matters.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        # httpx is the SDK's async transport; its sync methods stay off (we never block).
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key.get_secret_value(),
            base_addresses={"api": api_base, "meter_events": api_base} if api_base else None,
            stripe_version=stripe_version,
            max_network_retries=0,
            http_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeBilling | None:
        """The adapter when a secret key is configured; None when billing is off."""
        if settings.stripe_secret_key is None:
            return None
        return cls(settings.stripe_secret_key, settings.stripe_api_base)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()

    async def ensure_customer(self, user_id: str, existing_customer_id: str | None) -> str:
        """The user's Stripe customer id: the existing one, or one made now under a key derived
        from the user, so concurrent or retried first checkouts make a single customer."""
        if existing_customer_id:
            return existing_customer_id
        async with stripe_errors("creating a customer"):
            customer = await self._client.v1.customers.create_async(
                {"metadata": {"user_id": user_id}}, {"idempotency_key": customer_key(user_id)}
            )
        return customer.id

    async def checkout(
        self,
        customer_id: str,
        user_id: str,
        price_id: str,
        usage_price_id: str | None,
        success_url: str,
        cancel_url: str,
    ) -> str:
        """The URL of a Checkout page subscribing the customer to `price_id` (and to the
        metered usage price, which takes no quantity)."""
        items: list[dict[str, Any]] = [{"price": price_id, "quantity": 1}]
        if usage_price_id:
            items.append({"price": usage_price_id})
        params: Any = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": user_id,
            "metadata": {"user_id": user_id},
            "subscription_data": {"metadata": {"user_id": user_id}},
            "line_items": items,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        async with stripe_errors("opening a Checkout session"):
            session = await self._client.v1.checkout.sessions.create_async(params)
        if not session.url:
            raise BillingRefused("Stripe opened a Checkout session without a URL")
        return session.url

    async def portal(self, customer_id: str, return_url: str) -> str:
        """The URL of the customer portal, where the founder changes plan, card or cancels."""
        async with stripe_errors("opening the customer portal"):
            session = await self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}
            )
        return session.url

    async def subscription(self, subscription_id: str) -> SubscriptionState:
        """The subscription as it is now."""
        async with stripe_errors("reading a subscription"):
            found = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        return subscription_state(found.to_dict())

    async def invoice_subscription(self, invoice_id: str) -> str | None:
        """The id of the subscription an invoice bills; None for an invoice of none."""
        async with stripe_errors("reading an invoice"):
            found = await self._client.v1.invoices.retrieve_async(invoice_id)
        invoice = found.to_dict()
        # Since API version 2025-03-31 it sits under parent; before, at the top.
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        return object_id(details.get("subscription") or invoice.get("subscription"))

    async def send_meter_event(
        self,
        event_name: str,
        customer_id: str,
        value: int,
        identifier: str,
        timestamp: int,
        idempotency_key: str,
    ) -> MeterOutcome:
        """Send one billing meter event. `duplicate`: Stripe already holds one with this
        identifier, which is as good as accepting it now."""
        params: Any = {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
            "identifier": identifier,
            "timestamp": timestamp,
        }
        async with stripe_errors("sending a meter event"):
            try:
                await self._client.v1.billing.meter_events.create_async(
                    params, {"idempotency_key": idempotency_key}
                )
            except stripe.InvalidRequestError as err:
                if duplicate_identifier(err):
                    return "duplicate"
                raise
        return "accepted"


def duplicate_identifier(err: stripe.InvalidRequestError) -> bool:
    """True when Stripe refused a meter event because it holds one with its identifier."""
    if err.code == DUPLICATE_METER_CODE:
        return True
    return err.http_status == 400 and DUPLICATE_METER_MESSAGE in str(err.user_message or "")


def subscription_state(data: dict[str, Any]) -> SubscriptionState:
    """A subscription's JSON (of any API version) as our state."""
    items = (data.get("items") or {}).get("data") or []
    start, end = data.get("current_period_start"), data.get("current_period_end")
    # Since API version 2025-03-31 the periods live on the items.
    for item in items:
        if start is None and item.get("current_period_start") is not None:
            start, end = item["current_period_start"], item.get("current_period_end")
    return SubscriptionState(
        id=data["id"],
        customer=object_id(data.get("customer")) or "",
        status=data["status"],
        prices=tuple(p for item in items if (p := object_id(item.get("price")))),
        created=int(data.get("created") or 0),
        current_period_start=start,
        current_period_end=end,
    )


def object_id(value: Any) -> str | None:
    """An id that Stripe may show as the id itself or as the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None
