"""Our small error hierarchy, and how each kind crosses the activity boundary.

Adapters map vendor exceptions into these; `to_application_error` turns them into Temporal's
`ApplicationError` with `non_retryable` set by kind, keeping the original type name visible.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError


class CofounderError(Exception):
    """Base of every error an activity raises on purpose."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


class SandboxUnavailable(CofounderError):
    """The sandbox runtime is missing or broken on this worker."""

    retryable = False


def to_application_error(err: CofounderError, *, type_name: str | None = None) -> ApplicationError:
    """Wrap one of our errors for Temporal, keeping the original type name."""
    delay = timedelta(seconds=err.retry_after) if err.retry_after else None
    return ApplicationError(
        str(err),
        type=type_name or type(err).__name__,
        non_retryable=not err.retryable,
        next_retry_delay=delay,
    )
