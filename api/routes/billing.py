"""Billing: subscribe to a plan (Stripe Checkout), manage it (the customer portal), read usage."""

from __future__ import annotations

from fastapi import APIRouter

from api import billing
from api.deps import CurrentUser, SessionDep, SettingsDep, StripeDep
from api.schemas.billing import CheckoutRequest, RedirectOut, UsageOut
from api.schemas.errors import ErrorOut

router = APIRouter(prefix="/api/billing", tags=["billing"])

_NOT_SOLD = {
    "model": ErrorOut,
    "description": "Billing is not configured here, or this plan and period are not sold.",
}
_DOWN = {"model": ErrorOut, "description": "Stripe or the database is unavailable."}
_REFUSED = {"model": ErrorOut, "description": "Stripe refused the request (check the settings)."}


_NOT_TEXT = {"model": ErrorOut, "description": "The body is not UTF-8 text."}


@router.post("/checkout", responses={400: _NOT_TEXT, 409: _NOT_SOLD, 502: _REFUSED, 503: _DOWN})
async def checkout(
    body: CheckoutRequest,
    session: SessionDep,
    settings: SettingsDep,
    stripe: StripeDep,
    user: CurrentUser,
) -> RedirectOut:
    """A Stripe Checkout page that subscribes the caller to `tier`, billed `period`; the plan
    applies once Stripe tells us the subscription is active."""
    return await billing.checkout(session, stripe, settings, user.id, body)


@router.post(
    "/portal",
    responses={
        409: {"model": ErrorOut, "description": "No billing here, or no subscription yet."},
        502: _REFUSED,
        503: _DOWN,
    },
)
async def portal(
    session: SessionDep, settings: SettingsDep, stripe: StripeDep, user: CurrentUser
) -> RedirectOut:
    """Stripe's customer portal for the caller: change plan or card, cancel, see invoices."""
    return await billing.portal(session, stripe, settings, user.id)


@router.get("/usage", responses={503: _DOWN})
async def usage(session: SessionDep, settings: SettingsDep, user: CurrentUser) -> UsageOut:
    """This month's builds, tokens and cost per project, the plan and its limits, and the
    usage not yet accepted by Stripe (retried until it is)."""
    return await billing.usage(session, settings, user.id)
