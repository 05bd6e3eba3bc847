"""The body of a refusal other than a 422."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """A refusal other than a 422 (which lists each invalid field): what went wrong, for people."""

    detail: str
