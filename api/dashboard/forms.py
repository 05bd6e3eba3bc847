"""The dashboard's forms: read from a url-encoded body, checked by the API's own request
models, so a bad value is refused in the words the JSON routes use."""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from api.dashboard.errors import validation_messages
from api.errors import ServiceError

# The most a form's body may hold: a goal or feedback of a few thousand characters fits.
MAX_FORM_BYTES = 64 * 1024
# Who may post a form: pages of this site. A browser names the sender in Sec-Fetch-Site (or
# Origin); a form on another site posting with the user's session cookie is refused.
SAME_SITE = {"same-origin", "none"}


M = TypeVar("M", bound=BaseModel)


class FormRefused(ServiceError):
    """A form's values refused by the API's request model: one message per bad field."""

    status_code = 422

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class CrossSite(ServiceError):
    status_code = 403


Form = dict[str, str]


async def read_form(request: Request) -> Form:
    """The posted fields (the last value of a repeated one), after the same-site check."""
    _check_same_site(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused([f"the form is larger than {MAX_FORM_BYTES} bytes"])
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise FormRefused(["the form is not UTF-8 text"]) from None


FormDep = Annotated[Form, Depends(read_form)]


def _check_same_site(request: Request) -> None:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        same = site in SAME_SITE
    else:  # an older browser: its Origin names the page's host (the scheme may differ behind TLS)
        origin = request.headers.get("origin")
        same = origin is None or urlsplit(origin).netloc == request.headers.get("host")
    if not same:
        raise CrossSite("a form from another site cannot act for you here")


def validated(model: type[M], fields: dict[str, object]) -> M:
    """`fields` as the API's request model; text is converted (a form has only text), else the
    model's own rules and words apply."""
    try:
        return model.model_validate(fields, strict=False)
    except ValidationError as err:
        raise FormRefused(validation_messages(err.errors())) from None


def optional(value: str | None) -> str | None:
    """An empty field is an absent one (the API's default applies)."""
    return value if value not in (None, "") else None


def new_key() -> str:
    """An Idempotency-Key for one rendering of a form: posting it twice acts once."""
    return uuid.uuid4().hex
