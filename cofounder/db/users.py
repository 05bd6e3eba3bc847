"""The people who have signed in (one row per Clerk user, made the first time they call), with
their plan and their standing with Stripe."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow


class UserAccount(Base):
    """A signed-in user; `id` is Clerk's `sub`, the owner every other row is keyed by."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The plan whose limits apply (a key of Settings.plans).
    tier: Mapped[str] = mapped_column(String(32), default="free", server_default="free")
    # Written by every counted admission and every Stripe event applied: the write is the lock
    # that makes them take turns per user (a row lock on PostgreSQL, the write lock on SQLite).
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The subscription's status as Stripe last showed it (active, past_due, canceled, ...).
    subscription_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    billing_period: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A failed payment holds the user's builds until it is paid; no new build starts meanwhile.
    billing_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Bumped with every change of the hold, so builds apply the newest and drop stale signals.
    billing_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Ledger rows from this time on are sent to Stripe as meter events; None: nothing is.
    metered_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
