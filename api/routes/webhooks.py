"""Webhooks from the vendors the product works with; each proves its sender before anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api import github_webhooks, stripe_webhooks
from api.deps import SessionDep, SettingsDep, StripeDep, TemporalDep
from api.errors import Invalid, Unauthorized
from api.schemas.errors import ErrorOut

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.post(
    "/github",
    responses={
        400: {"model": ErrorOut, "description": "Not a JSON object, or no event or delivery id."},
        401: {
            "model": ErrorOut,
            "description": "Missing or bad X-Hub-Signature-256, or no webhook secret set here.",
        },
        503: {
            "model": ErrorOut,
            "description": "A build could not be told (Temporal is unavailable); nothing was "
            "recorded, so GitHub's retry applies it.",
        },
    },
)
async def github(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """A GitHub App webhook: verified over the raw body, then applied once per delivery id
    (`applied`, `ignored` when nothing changed and no build was told, or `duplicate`)."""
    body = await request.body()
    github_webhooks.verify(settings, body, x_hub_signature_256)
    if not x_github_event or not x_github_delivery or len(x_github_delivery) > 100:
        raise Invalid("X-GitHub-Event and X-GitHub-Delivery are required")
    context = github_webhooks.Context(session, client, settings)
    outcome = await github_webhooks.handle(context, x_github_event, x_github_delivery, body)
    return {"delivery": x_github_delivery, "outcome": outcome}


@router.post(
    "/stripe",
    responses={
        400: {"model": ErrorOut, "description": "Not a Stripe event."},
        401: {
            "model": ErrorOut,
            "description": "Missing or bad Stripe-Signature, a timestamp older than the"
            " tolerance, or no webhook secret set here.",
        },
        503: {
            "model": ErrorOut,
            "description": "Stripe, Temporal or the database is unavailable; nothing was"
            " recorded, so Stripe's retry applies the event.",
        },
    },
)
async def stripe(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    stripe: StripeDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """A Stripe webhook: verified over the raw body with its timestamp, then applied once per
    event id (`applied`, `ignored` when there was nothing to do, or `duplicate`)."""
    event = stripe_webhooks.verify(settings, await request.body(), stripe_signature)
    if stripe is None:
        raise Unauthorized("Stripe is not configured here (STRIPE_SECRET_KEY)")
    context = stripe_webhooks.Context(session, client, settings, stripe)
    return {"event": event["id"], "outcome": await stripe_webhooks.handle(context, event)}
