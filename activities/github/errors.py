"""githubkit's exceptions mapped onto ours, in one place; no message carries a credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed, RequestTimeout

from activities.errors import BadRequest, NotAuthorized, RateLimited, Unavailable


@asynccontextmanager
async def github_errors(doing: str) -> AsyncIterator[None]:
    """GitHub's failures while `doing` something, as ours."""
    try:
        yield
    except RateLimitExceeded as err:
        wait = err.retry_after.total_seconds()
        raise RateLimited(f"GitHub rate limit while {doing}", retry_after=wait) from None
    except RequestFailed as err:
        raise _by_status(err, doing) from None
    except (RequestTimeout, RequestError) as err:
        kind = type(err).__name__
        raise Unavailable(f"GitHub unreachable while {doing}", type_name=kind) from None


def _by_status(err: RequestFailed, doing: str) -> Exception:
    status = err.response.status_code
    message = f"GitHub answered {status} while {doing}: {_message(err)}"
    kind = type(err).__name__
    if status in (401, 403):
        return NotAuthorized(message, type_name=kind)
    if status == 429:
        return RateLimited(message, type_name=kind)
    if status >= 500:
        return Unavailable(message, type_name=kind)
    return BadRequest(message, type_name=kind)


def _message(err: RequestFailed) -> str:
    """GitHub's own words for the failure (its JSON `message`), short."""
    try:
        body = err.response.raw_response.json()
    except ValueError:
        return "no details"
    text = body.get("message", "no details") if isinstance(body, dict) else "no details"
    return str(text)[:300]
