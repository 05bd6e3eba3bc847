"""A build's review session in the app database: each iteration it published, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow

# What an iteration did to the pull request's branch.
ITERATION_PUSHED = "pushed"  # a new commit on the branch
ITERATION_UNCHANGED = "unchanged"  # the code already was what the feedback asked for
ITERATION_FAILED = "failed"  # no passing code: the reply says why


class ReviewIteration(Base):
    """One iteration of a build's review session: what it answered, what it pushed and how it
    replied. Written once, after the push and the reply, so a retry finds it and does nothing."""

    __tablename__ = "review_iterations"
    # Also the index for a build's iterations: build_id leads it.
    __table_args__ = (UniqueConstraint("build_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    feedback_summary: Mapped[str] = mapped_column(Text)
    head_sha: Mapped[str] = mapped_column(String(64))  # the branch's head after the iteration
    # The reply's page on GitHub; None on the local remote, where this row is the reply.
    reply_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reply_body: Mapped[str] = mapped_column(Text)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
