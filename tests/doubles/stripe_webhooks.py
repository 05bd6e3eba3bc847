"""Stripe's webhooks as Stripe sends them: an event's JSON, and the body signed with the
endpoint's secret in a `Stripe-Signature` header (`t=<ts>,v1=<HMAC-SHA256 of "t.body">`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.doubles.stripe_forms import new_id
from tests.doubles.stripe_shapes import DEFAULT_VERSION


def stripe_event(
    kind: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    api_version: str = DEFAULT_VERSION,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event of type `kind` about `obj` (a JSON object as the double answers it)."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or new_id("evt_", 24),
        "object": "event",
        "type": kind,
        "created": created if created is not None else int(time.time()),
        "api_version": api_version,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `Stripe-Signature` header's value for `body` signed at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_webhook(
    payload: dict[str, Any] | bytes, secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook request as Stripe sends it: the raw body and its headers."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    at = timestamp if timestamp is not None else int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature(secret, body, at),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return body, headers
