"""The health check's answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = "ok"
    checks: dict[str, str] | None = Field(default=None, description='"ok" or "down: <why>"')
    detail: str | None = None
