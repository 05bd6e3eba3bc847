"""The people who have signed in: one row per Clerk user, made the first time they call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow


class UserAccount(Base):
    """A signed-in user; `id` is Clerk's `sub`, the owner every other row is keyed by."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
