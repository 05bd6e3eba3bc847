"""Our small error hierarchy, and how each kind crosses the activity boundary.

Adapters map vendor exceptions into these. Every activity is wrapped in `activity_boundary`,
the one place they (and the artifact store's and sandbox's own errors) become Temporal's
`ApplicationError`, with `non_retryable` set by kind and the original type name kept visible.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from cofounder.artifacts import ArtifactNotFound, BadReference, UnsafePath

P = ParamSpec("P")
R = TypeVar("R")


class CofounderError(Exception):
    """Base of every error an activity raises on purpose."""

    retryable = True
    # Carried to the workflow in the ApplicationError's details.
    details: tuple[object, ...] = ()

    def __init__(
        self, message: str, *, retry_after: float | None = None, type_name: str | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # The vendor's own exception type (e.g. RateLimitError), shown instead of ours.
        self.type_name = type_name


class BadRequest(CofounderError):
    """The request can never succeed as sent (400, 404, 422)."""

    retryable = False


class NotAuthorized(CofounderError):
    """Credentials missing, wrong or lacking permission (401, 403)."""

    retryable = False


class RateLimited(CofounderError):
    """429: retry after the vendor's `retry-after`."""


class Unavailable(CofounderError):
    """5xx, 529 overloaded, timeouts and dropped connections: retry with backoff."""


class InvalidModelOutput(CofounderError):
    """The model answered, but not in the shape we asked for; another attempt may do better."""


class MalformedResponse(InvalidModelOutput):
    """The model API answered 200 with a body that is not a Messages API response."""


class UnusableModelOutput(CofounderError):
    """The model's answers to one request were unusable too many times in a row: give up."""

    retryable = False


class MissingArtifact(CofounderError):
    """Something a step needs is not in the artifact store: asking again will not bring it."""

    retryable = False


class SandboxUnavailable(CofounderError):
    """The sandbox runtime is missing or broken on this worker."""

    retryable = False


class OverBudget(CofounderError):
    """The next model call could cost more than the build has left, so it was not made; the
    workflow waits for more budget, then asks again."""

    retryable = False

    def __init__(self, message: str, *, needed_micro_usd: int) -> None:
        super().__init__(message)
        self.details = (needed_micro_usd,)


def to_application_error(err: CofounderError) -> ApplicationError:
    """Wrap one of our errors for Temporal, keeping the original type name."""
    delay = timedelta(seconds=err.retry_after) if err.retry_after else None
    return ApplicationError(
        str(err),
        *err.details,
        type=err.type_name or type(err).__name__,
        non_retryable=not err.retryable,
        next_retry_delay=delay,
    )


def classify(err: Exception) -> CofounderError | None:
    """Our kind for an error raised inside an activity, or None to let Temporal retry it as is
    (an unexpected exception: a bug is retried until fixed, bounded by the step's deadline)."""
    if isinstance(err, CofounderError):
        return err
    if isinstance(err, ArtifactNotFound | BadReference):
        return MissingArtifact(f"artifact {err} is missing from the store")
    if isinstance(err, UnsafePath):
        return BadRequest(str(err))
    return None


def activity_boundary(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity so every error it raises crosses into Temporal classified the same way."""

    @functools.wraps(fn)
    async def bounded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as err:
            kind = classify(err)
            if kind is None:
                raise
            raise to_application_error(kind) from err

    return bounded
