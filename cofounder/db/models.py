"""The app database: projects, builds, pull requests and the usage ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored time with its zone: SQLite hands times back without one; all were written in
    UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A linked GitHub repository (owner/name) and the App's installation that has it; None: the
    # project lives on its local bare remote.
    repository: Mapped[str | None] = mapped_column(String(200), nullable=True)
    installation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Build(Base):
    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    goal: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), index=True)
    require_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    # The limit on model spend, extensions included; None for builds from before budgets.
    budget_micro_usd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The workflow run that recorded the latest phase, and that phase's workflow time: a late
    # write from an older run (reset while its step was in flight) never overwrites a newer one.
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The workflow's live view (BuildView JSON) as of `status_at`: a build parked at a gate or in
    # review is read from here, not by waking a worker to replay it for a query. `steered_at` is
    # when the API last signalled or updated the workflow: a view not newer than that may predate
    # what was sent, so the workflow is asked instead (api/queries.py).
    view: Mapped[str | None] = mapped_column(Text, nullable=True)
    steered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BuildEvent(Base):
    """A build's phase changes in order, keyed by run: a retried write is a no-op, a reset or
    continued run keeps its own events, and `parent_run_id` (on a run's first event) links the
    run to the one whose events came before it."""

    __tablename__ = "build_events"
    __table_args__ = (UniqueConstraint("build_id", "run_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"), index=True)
    run_id: Mapped[str] = mapped_column(String(64), default="")
    parent_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BuildLogEntry(Base):
    """One event of a build's live stream (`GET /api/builds/{id}/events`), in the order written:
    phases, model turns, tool calls, commands and their output, costs, pull request changes and
    review iterations. `key` names the event's origin (a phase's run and seq, an activity's
    identity), so a retried write adds nothing; the row's id is the stream's event id."""

    __tablename__ = "build_log"
    __table_args__ = (
        UniqueConstraint("build_id", "key"),
        Index("ix_build_log_build_id_id", "build_id", "id"),
    )

    # SQLite autoincrements only an INTEGER primary key; PostgreSQL's may outgrow 32 bits.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"))
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# A pull request's states: open until merged (closing one is not a thing yet).
PR_OPEN = "open"
PR_MERGED = "merged"
PR_CLOSED = "closed"  # closed on GitHub without a merge


class PullRequest(Base):
    __tablename__ = "pull_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    base: Mapped[str] = mapped_column(String(200))
    branch: Mapped[str] = mapped_column(String(200))
    head_sha: Mapped[str] = mapped_column(String(64))
    diff: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=PR_OPEN, server_default=PR_OPEN)
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # What main moved to: the branch's head (fast-forward) or the merge commit.
    merge_commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where it was opened: local (the project's bare remote) or github (number and URL there).
    provider: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)


class LedgerEntry(Base):
    """One row per LLM call; the idempotency key makes a retried write a no-op."""

    __tablename__ = "usage_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    # The build's step (1-based, as its status counts them); None: planning or review.
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When Stripe accepted this row's meter event (its identifier is the idempotency key);
    # None: not sent (yet), with the last refusal in meter_error.
    metered_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    meter_error: Mapped[str | None] = mapped_column(Text, nullable=True)
