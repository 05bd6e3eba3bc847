"""E2B's exceptions mapped onto ours, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from e2b import (
    AuthenticationException,
    InvalidArgumentException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    TimeoutException,
)

from activities.errors import BadRequest, NotAuthorized, RateLimited, Unavailable
from activities.sandbox import SandboxGone


@asynccontextmanager
async def vendor_errors() -> AsyncIterator[None]:
    """E2B's exceptions as ours: the one place they are classified."""
    try:
        yield
    except (SandboxNotFoundException, SandboxNotRunningException) as err:
        # Not running, to envd: killed, expired or paused; a connect resumes a paused one.
        raise SandboxGone(str(err)) from None
    except AuthenticationException as err:
        raise NotAuthorized(
            f"E2B refused the API key: {err}", type_name=type(err).__name__
        ) from None
    except RateLimitException as err:
        raise RateLimited(f"E2B rate limit: {err}", type_name=type(err).__name__) from None
    except InvalidArgumentException as err:
        raise BadRequest(f"E2B refused the request: {err}", type_name=type(err).__name__) from None
    except (TimeoutException, SandboxException) as err:
        raise Unavailable(f"E2B: {err}", type_name=type(err).__name__) from None
