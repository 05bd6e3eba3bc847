"""Billing's own rows: Stripe events applied (each once) and build requests by idempotency key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow


class StripeEvent(Base):
    """A Stripe event whose effect was committed in the same transaction as this row."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BuildRequest(Base):
    """`POST /api/builds` with an Idempotency-Key: the build the key made, and its body's hash."""

    __tablename__ = "build_requests"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    build_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
