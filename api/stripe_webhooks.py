"""Stripe's webhooks: the signature checked with its timestamp tolerance, each event applied once.

An event is recorded in the transaction of its effect: a redelivery finds the record and changes
nothing, and an event whose handling failed is not recorded, so Stripe's retry applies it.
Events are applied by the subscription's current state, fetched from Stripe while the owner's
row is locked, never by what the event carried: events that arrive out of order, or twice, end
in the same place. Builds are told (held, released, cancelled) before the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.billing.stripe_api import StripeBilling, SubscriptionState
from api.controls import send_cancel, send_hold
from api.errors import Invalid, Unauthorized
from cofounder.db import Build, StripeEvent, UserAccount, insert_for
from cofounder.db.models import utcnow
from cofounder.payloads import ENDED, BillingHold
from cofounder.settings import Settings

log = structlog.get_logger()

TOLERANCE_SECONDS = 300  # Stripe's own default: an older signed timestamp is a replay
GOOD = frozenset({"active", "trialing"})  # the plan applies, builds run
UNPAID = frozenset({"past_due", "unpaid"})  # builds are held until an invoice is paid
ENDED_SUBSCRIPTION = frozenset({"canceled", "incomplete_expired"})  # back to the free plan
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_failed"})


@dataclass(frozen=True)
class Context:
    session: AsyncSession
    client: Client
    settings: Settings
    stripe: StripeBilling


def verify(settings: Settings, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event, if Stripe signed this body within the tolerance; Unauthorized otherwise."""
    secret = settings.stripe_webhook_secret
    if secret is None:
        raise Unauthorized("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET)")
    if not signature:
        raise Unauthorized("no Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(
            payload.decode("utf-8"), signature, secret.get_secret_value(), TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError:
        raise Unauthorized("bad Stripe-Signature (or its timestamp is too old)") from None
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not a Stripe event") from None
    data: dict[str, Any] = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise Invalid("the event has no id or type")
    return data


async def handle(context: Context, event: dict[str, Any]) -> str:
    """Apply `event` once: `applied`, `ignored` (recorded, nothing to do) or `duplicate`."""
    session = context.session
    record = insert_for(session)(StripeEvent).values(
        id=event["id"], type=event["type"], received_at=utcnow()
    )
    inserted = await session.execute(record.on_conflict_do_nothing(index_elements=["id"]))
    if not inserted.rowcount:  # type: ignore[attr-defined]
        await session.rollback()
        return "duplicate"
    subscription_id = _subscription_of(event)
    outcome = "ignored"
    if subscription_id is not None:
        outcome = await _refresh(context, subscription_id, _customer_of(event))
    await session.commit()
    log.info("stripe event", event_id=event["id"], type=event["type"], outcome=outcome)
    return outcome


def _subscription_of(event: dict[str, Any]) -> str | None:
    """The subscription an event is about; None for events we only record."""
    kind, obj = event["type"], event.get("data", {}).get("object") or {}
    found: Any = None
    if kind in SUBSCRIPTION_EVENTS:
        found = obj.get("id")
    elif kind == "checkout.session.completed":
        found = obj.get("subscription")
    elif kind in INVOICE_EVENTS:
        # Newer API versions moved it under parent; older ones keep it at the top.
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        found = details.get("subscription") or obj.get("subscription")
    if isinstance(found, dict):  # expanded
        found = found.get("id")
    return found if isinstance(found, str) and found else None


def _customer_of(event: dict[str, Any]) -> str | None:
    customer = (event.get("data", {}).get("object") or {}).get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else None


async def _refresh(context: Context, subscription_id: str, customer: str | None) -> str:
    """Lock the customer's user, fetch the subscription as it is now, and apply it."""
    user = await _lock_customer(context.session, customer)
    state = await context.stripe.subscription(subscription_id)
    if user is None or user.stripe_customer_id != state.customer:
        user = await _lock_customer(context.session, state.customer)
    if user is None:
        log.warning("stripe event for an unknown customer", subscription=subscription_id)
        return "ignored"
    return await Apply(context, user)(state)


async def _lock_customer(session: AsyncSession, customer: str | None) -> UserAccount | None:
    if customer is None:
        return None
    touch = update(UserAccount).where(UserAccount.stripe_customer_id == customer)
    await session.execute(touch.values(admitted_at=utcnow()))  # the write holds the row
    found = select(UserAccount).where(UserAccount.stripe_customer_id == customer)
    return (await session.scalars(found.execution_options(populate_existing=True))).first()


class Apply:
    """A subscription's current state applied to its user: plan, hold, and their builds."""

    def __init__(self, context: Context, user: UserAccount) -> None:
        self.context, self.user = context, user

    async def __call__(self, state: SubscriptionState) -> str:
        user, settings = self.user, self.context.settings
        if user.stripe_subscription_id not in (None, state.id) and state.status not in GOOD:
            return "ignored"  # an old subscription's news; the user has moved on to another
        user.stripe_subscription_id, user.subscription_status = state.id, state.status
        if state.status in GOOD:
            tier = _paid_tier(settings, state)
            if tier is not None:
                user.tier, user.billing_period = tier
            user.metered_since = user.metered_since or utcnow()
            await self._hold(False)
        elif state.status in UNPAID:
            await self._hold(True)
        elif state.status in ENDED_SUBSCRIPTION:
            user.tier, user.billing_period = settings.default_tier, None
            await self._hold(False)
            await self._cancel_builds()
        return "applied"

    async def _hold(self, held: bool) -> None:
        if self.user.billing_hold == held:
            return
        self.user.billing_hold = held
        self.user.billing_version += 1
        hold = BillingHold(held=held, version=self.user.billing_version)
        for workflow_id in await self._open_builds():
            await send_hold(self.context.session, self.context.client, workflow_id, hold)
        log.info("builds held" if held else "builds released", owner=self.user.id)

    async def _cancel_builds(self) -> None:
        for workflow_id in await self._open_builds():
            await send_cancel(self.context.session, self.context.client, workflow_id)
        log.info("builds cancelled: subscription ended", owner=self.user.id)

    async def _open_builds(self) -> list[str]:
        ended = [status.value for status in ENDED]
        query = select(Build.workflow_id).where(
            Build.owner == self.user.id, Build.status.not_in(ended)
        )
        return list((await self.context.session.scalars(query)).all())


def _paid_tier(settings: Settings, state: SubscriptionState) -> tuple[str, str] | None:
    for price in state.prices:
        found = settings.tier_of_price(price)
        if found is not None:
            return found
    return None
