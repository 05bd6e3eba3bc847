"""Billing through Stripe: the adapter (`stripe_api`), its errors, and usage sent as billing
meter events (`metering`)."""

from activities.billing.errors import (
    BillingError,
    BillingNotAuthorized,
    BillingRefused,
    BillingUnavailable,
)
from activities.billing.stripe_api import StripeBilling, SubscriptionState

__all__ = [
    "BillingError",
    "BillingNotAuthorized",
    "BillingRefused",
    "BillingUnavailable",
    "StripeBilling",
    "SubscriptionState",
]
