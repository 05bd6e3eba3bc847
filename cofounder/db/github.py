"""What the app database keeps of GitHub: the App's installations and their repositories, as
its webhooks tell them, and every webhook delivery handled (so none has a second effect)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow


class WebhookDelivery(Base):
    """One handled delivery; written in the transaction of its effect."""

    __tablename__ = "webhook_deliveries"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)  # github (stripe later)
    delivery_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GitHubInstallation(Base):
    __tablename__ = "github_installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(100), index=True)  # the login it is installed on
    account_type: Mapped[str] = mapped_column(String(32))  # Organization or User
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    # The user who connected it (claimed it after installing the App); None until claimed. Only
    # its owner links projects to its repositories or creates repositories through it.
    owner: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GitHubRepository(Base):
    __tablename__ = "github_repositories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("github_installations.id", ondelete="CASCADE"), index=True
    )
    full_name: Mapped[str] = mapped_column(String(200), index=True)  # owner/name
