"""Refusals of the API's services, each with the HTTP status it answers with."""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """A refusal with a message for people; `status_code` is the HTTP answer."""

    status_code = 500
    # Headers every refusal of the kind carries; an instance adds its own (a 429's Retry-After).
    default_headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = {**self.default_headers, **(headers or {})}


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Unavailable(ServiceError):
    status_code = 503


class TimedOut(ServiceError):
    status_code = 504


class Invalid(ServiceError):
    """A request the route cannot read (a webhook's body or headers)."""

    status_code = 400


class Unauthorized(ServiceError):
    """A request that does not prove who sent it (a webhook's signature)."""

    status_code = 401


class NotSignedIn(Unauthorized):
    """A request without a valid session token; the header tells the caller how to sign in."""

    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class TooManyRequests(ServiceError):
    """Over the caller's request rate; Retry-After says in how many seconds to try again."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
