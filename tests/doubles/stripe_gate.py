"""What stands in front of the Stripe double's endpoints: routing, the secret key check, and
the idempotency layer that keeps each POST's result under its `Idempotency-Key`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from tests.doubles.stripe_endpoints import ROUTES, Handler
from tests.doubles.stripe_forms import Answer, error, fingerprint, masked, new_id
from tests.doubles.stripe_state import Kept, StripeState

MATCHERS = [
    (method, template, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"))
    for method, template, _ in ROUTES
]
HANDLERS = {(method, template): handler for method, template, handler in ROUTES}


def route_of(method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
    """The route a request matches ("POST /v1/customers"), its handler and path ids."""
    for route_method, template, pattern in MATCHERS:
        found = pattern.match(path)
        if found and route_method == method:
            return f"{method} {template}", HANDLERS[(method, template)], found.groupdict()
    return f"{method} {path}", None, {}


def unauthorized(api_key: str, authorization: str) -> Answer | None:
    """Stripe's 401 unless the request carries `api_key` (Bearer, or Basic's user name)."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() == "basic":
        given = base64.b64decode(given).decode(errors="replace").split(":", 1)[0]
    elif scheme.lower() != "bearer":
        given = ""
    if given == api_key:
        return None
    if not given:
        message = (
            "You did not provide an API key. You need to provide your API key in the"
            " Authorization header, using Bearer auth (e.g. 'Authorization: Bearer"
            " YOUR_SECRET_KEY')."
        )
        return error(401, "invalid_request_error", message)
    # Stripe echoes a wrong key masked: its start and its last four characters.
    message = f"Invalid API Key provided: {masked(given)}"
    return error(401, "invalid_request_error", message, code="api_key_invalid")


def idempotent(
    state: StripeState, key: str | None, request: tuple[str, str, str], run: Callable[[], Answer]
) -> Answer:
    """Run the request once per idempotency key: a repeat with the same endpoint and
    parameters gets the first answer (5xx included), other parameters an idempotency_error,
    and a repeat while the first still runs a 409. Validation failures keep nothing."""
    if key is None:
        return run()
    bound = fingerprint(*request)
    with state.lock:
        kept = state.kept.get(key)
        first = kept is None
        if kept is None:
            state.kept[key] = kept = Kept(bound, new_id("req_"))
    if not first:
        return _replay(state, key, kept, bound)
    answer = run()
    with state.lock:
        if answer.saved:
            kept.status, kept.body, kept.headers = answer.status, answer.body, answer.headers
        else:
            del state.kept[key]
    return answer


def _replay(state: StripeState, key: str, kept: Kept, bound: tuple[Any, ...]) -> Answer:
    if kept.fingerprint != bound:
        message = (
            "Keys for idempotent requests can only be used with the same parameters they"
            f" were first used with. Try using a key other than '{key}' if you meant to"
            " execute a different request."
        )
        return error(400, "idempotency_error", message, saved=False)
    if kept.status is None or kept.body is None:
        message = (
            "There is currently another in-progress request using this Idempotent Key"
            " (that probably means you submitted twice, and the other request is still"
            f" going through): {key}. Please try again later."
        )
        return error(409, "idempotency_error", message, saved=False)
    with state.lock:
        state.counts.replays += 1
    replayed = {"Idempotent-Replayed": "true", "Original-Request": kept.request_id}
    return Answer(kept.status, kept.body, headers={**kept.headers, **replayed})
