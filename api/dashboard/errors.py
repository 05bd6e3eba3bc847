"""Refusals on the dashboard, in the API's own words (the `detail` its JSON routes answer): an
error page, or for htmx a notice in the page's flash region."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.dashboard.assets import fragment, is_htmx
from api.errors import ServiceError

TITLES = {
    400: "Bad request",
    401: "Sign in",
    402: "Not in your plan",
    403: "Refused",
    404: "Not found",
    409: "Not now",
    422: "Invalid",
    429: "Too many requests",
    503: "Unavailable",
    504: "No answer",
}


def validation_messages(errors: Sequence[Any]) -> list[str]:
    """Pydantic's errors as the API's 422 words them (`msg`), each after the field it is about."""
    return [f"{error['loc'][-1]}: {error['msg']}" for error in errors]


def refusal(
    request: Request, status: int, details: list[str], headers: dict[str, str] | None = None
) -> Response:
    """The refusal as a page, or as a notice htmx puts in the flash region of the page."""
    context = {"status_code": status, "title": TITLES.get(status, "Error"), "details": details}
    if is_htmx(request):
        answer = fragment(request, "_notice.html", {"ok": False, "messages": details}, status)
        answer.headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    else:
        answer = fragment(request, "error.html", context, status)
    answer.headers.update(headers or {})  # a 429's Retry-After, a 401's WWW-Authenticate
    return answer


class DashboardRoute(APIRoute):
    """A dashboard route whose refusals, its dependencies' included (sign-in, a bad id, the rate
    limit), answer HTML rather than the JSON routes' bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as err:
                details = getattr(err, "messages", None) or [err.detail]  # a form's: one a field
                return refusal(request, err.status_code, details, err.headers)
            except RequestValidationError as err:
                return refusal(request, 422, validation_messages(err.errors()))

        return handle
