"""Reading what the model API answers: its errors as our error kinds, and its 200s checked.

The anthropic SDK builds a Message from any JSON without validating it, and raises its own
exception types; these functions turn both into things the activities (and people) can act on.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import anthropic
import httpx
from anthropic.types import Message
from pydantic import ValidationError

from activities.errors import (
    BadRequest,
    CofounderError,
    MalformedResponse,
    NotAuthorized,
    RateLimited,
    Unavailable,
)
from activities.llm_tools import shorten


def classify_error(err: anthropic.APIError) -> CofounderError:
    """Our error kind for an SDK error, named after the SDK's type; messages never carry the API
    key or the transcript."""
    kind = _kind_of(err)
    kind.type_name = type(err).__name__
    return kind


def _kind_of(err: anthropic.APIError) -> CofounderError:
    if isinstance(err, anthropic.APITimeoutError):
        return Unavailable("the model API did not answer in time")
    if isinstance(err, anthropic.APIConnectionError):
        return Unavailable("could not connect to the model API")
    if not isinstance(err, anthropic.APIStatusError):
        return Unavailable(f"the model API answered unexpectedly: {shorten(str(err), 200)}")
    status, detail = err.status_code, _detail(err)
    if status == 429:
        retry_after = _retry_after(err.response.headers)
        return RateLimited(
            f"the model API is rate limiting (429): {detail}", retry_after=retry_after
        )
    if status in (401, 403):
        return NotAuthorized(f"the model API rejected the API key ({status})")
    if status >= 500 or status in (408, 409):
        return Unavailable(f"the model API is unavailable ({status}): {detail}")
    return BadRequest(f"the model API refused the request ({status}): {detail}")


def _detail(err: anthropic.APIStatusError) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error", body)
    message = inner.get("message") if isinstance(inner, dict) else None
    return shorten(str(message or err.message), 300)


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def parse_message(response: httpx.Response) -> Message:
    """The Messages API response in `response`, or MalformedResponse saying what is wrong."""
    malformed = "the model API returned a malformed response"
    try:
        data = response.json()
    except ValueError:
        kind = response.headers.get("content-type") or "no content type"
        detail = f"the body is not JSON ({kind}, {len(response.content)} bytes)"
        raise MalformedResponse(f"{malformed}: {detail}") from None
    try:
        return Message.model_validate(data)
    except ValidationError as err:
        raise MalformedResponse(f"{malformed}: {_shape_errors(err)}") from None


def _shape_errors(err: ValidationError) -> str:
    """Where a response body went wrong, once per place (a content block fails every union
    member, which would otherwise list a dozen block types)."""
    places: dict[str, str] = {}
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        where = ".".join(loc[:2]) or "body"
        message = "not a known content block" if loc[:1] == ["content"] and len(loc) > 2 else None
        places.setdefault(where, message or item["msg"])
    return "; ".join(f"{where}: {msg}" for where, msg in list(places.items())[:4])


async def create_message(client: anthropic.AsyncAnthropic, body: dict[str, Any]) -> Message:
    """One Messages API call: its errors as our kinds, its answer validated."""
    try:
        # The raw response: the SDK builds a Message from any JSON without validating it.
        raw = await client.messages.with_raw_response.create(**body)
    except anthropic.APIError as err:
        raise classify_error(err) from err
    return parse_message(raw.http_response)
