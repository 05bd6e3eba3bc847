"""What the Stripe double reads and answers on the wire: Stripe's form encoding with nested keys
(`line_items[0][price]`, `metadata[user_id]`), and its JSON answers and error bodies.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

ID_ALPHABET = string.ascii_letters + string.digits
BRACKETS = re.compile(r"\[([^\]]*)\]")


def new_id(prefix: str, length: int = 14) -> str:
    """An id the way Stripe spells them: `cus_`, `sub_`, `in_`, ... and random letters."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def parse_form(body: str) -> dict[str, Any]:
    """A form body as nested dicts and lists: `a[0][b]=1&m[k]=v` is {a: [{b: 1}], m: {k: v}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = [key.split("[", 1)[0], *BRACKETS.findall(key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        node[last or str(len(node))] = value  # `expand[]=x` appends
    converted = _with_lists(root)
    assert isinstance(converted, dict)
    return converted


def _with_lists(node: Any) -> Any:
    # Stripe's encoding has no list syntax of its own: a dict keyed 0, 1, ... is a list.
    if not isinstance(node, dict):
        return node
    converted = {key: _with_lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def fingerprint(method: str, path: str, body: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """What an idempotency key is bound to: the endpoint and its parameters, in any order."""
    return method, path, tuple(sorted(parse_qsl(body, keep_blank_values=True)))


@dataclass
class Answer:
    """A response: its status and JSON body. `saved` False: an idempotency key does not keep it
    (Stripe keeps results only once an endpoint began executing, not validation failures)."""

    status: int
    body: dict[str, Any]
    saved: bool = True
    headers: dict[str, str] = field(default_factory=dict)


def error(
    status: int,
    kind: str,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    saved: bool = True,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Stripe's error body: `{"error": {"type", "message", "code"?, "param"?}}`."""
    detail: dict[str, Any] = {"type": kind, "message": message}
    if code is not None:
        detail["code"] = code
        detail["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        detail["param"] = param
    return Answer(status, {"error": detail}, saved=saved, headers=headers or {})


def missing(param: str) -> Answer:
    """A required parameter was not sent: a validation failure, not kept under the key."""
    return error(
        400,
        "invalid_request_error",
        f"Missing required param: {param}.",
        code="parameter_missing",
        param=param,
        saved=False,
    )


def invalid(param: str, message: str) -> Answer:
    return error(
        400, "invalid_request_error", message, code="parameter_invalid", param=param, saved=False
    )


def no_such(kind: str, object_id: str, param: str = "id") -> Answer:
    return error(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def server_error(status: int) -> Answer:
    """What a fault injected by a test answers: a 5xx, a 429, or another status."""
    if status == 429:
        message = "Request rate limit exceeded. Please retry after a short wait."
        return error(429, "invalid_request_error", message, code="rate_limit")
    if status >= 500:
        return error(status, "api_error", "An unknown error occurred. Please try again later.")
    return error(status, "invalid_request_error", "The request could not be processed.")


def masked(key: str) -> str:
    """A key as Stripe echoes a wrong one: its start and its last four characters."""
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"


def listing(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}
