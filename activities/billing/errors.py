"""Stripe's failures as ours, in one place. No message carries the secret key: Stripe echoes a
wrong key (masked) in its 401, so credential refusals keep only the status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from activities.errors import CofounderError

# Statuses that say "not now" rather than "never": a concurrent request (409), rate limits.
RETRYABLE_STATUSES = frozenset({409, 429})


class BillingError(CofounderError):
    """Stripe could not do what we asked."""


class BillingUnavailable(BillingError):
    """Stripe unreachable, timing out, overloaded (5xx), rate limiting (429) or busy with a
    concurrent request (409): asking again later may work."""


class BillingRefused(BillingError):
    """Stripe refused the request as sent (4xx): asking again will not help."""

    retryable = False


class BillingNotAuthorized(BillingRefused):
    """Stripe refused our key (401) or its permissions (403): nothing we send can work."""


@asynccontextmanager
async def stripe_errors(doing: str) -> AsyncIterator[None]:
    """Stripe's exceptions raised while `doing` something, as ours."""
    try:
        yield
    except (stripe.AuthenticationError, stripe.PermissionError) as err:
        message = f"Stripe refused our credentials ({err.http_status}) while {doing}"
        raise BillingNotAuthorized(message, type_name=type(err).__name__) from None
    except stripe.APIConnectionError as err:
        message = f"Stripe could not be reached while {doing}"
        raise BillingUnavailable(message, type_name=type(err).__name__) from None
    except stripe.StripeError as err:
        raise by_status(err, doing) from None


def by_status(err: stripe.StripeError, doing: str) -> BillingError:
    """Our kind for an error Stripe answered with, by its HTTP status."""
    status = err.http_status
    message = f"Stripe answered {status} while {doing}: {stripe_message(err)}"
    kind = type(err).__name__
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return BillingUnavailable(message, type_name=kind)
    return BillingRefused(message, type_name=kind)


def stripe_message(err: stripe.StripeError) -> str:
    """Stripe's own words for a failure, short (without the request id prefix)."""
    return str(err.user_message or "no details")[:300]
