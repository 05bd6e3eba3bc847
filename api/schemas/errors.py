"""The body of a refusal other than a 422."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """A refusal other than a 422 (which lists each invalid field): what went wrong, for people."""

    detail: str


def refusals(
    described: dict[int, str], *codes: int, notes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's OpenAPI entries for these statuses, each described as `described` says (or as
    `notes` says instead), so /openapi.json lists every refusal besides FastAPI's own 422."""
    said = {**described, **(notes or {})}
    return {code: {"model": ErrorOut, "description": said[code]} for code in codes}
