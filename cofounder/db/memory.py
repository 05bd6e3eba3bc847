"""Project memory in the app database (cofounder/memory/database.py reads and writes it).

The full-text index is the dialect's own and lives only in the migration (0015): an FTS5 table
kept by triggers on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL. Neither
is mapped here; queries name them directly.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cofounder.db.models import Base, utcnow

# The PostgreSQL column the migration generates from `text`; SQLite's index is this table.
SEARCH_COLUMN = "text_search"
FTS_TABLE = "memories_fts"


class MemoryRow(Base):
    """One remembered item of an owner's project. `key` makes remembering idempotent; a removed
    memory stays as a tombstone (`deleted_at` set, `text` cleared) so its key is never re-added."""

    __tablename__ = "memories"
    __table_args__ = (
        # Also the index for a scope's lookups by key: owner and project lead it.
        UniqueConstraint("owner", "project", "key"),
        # A scope's listing, newest first; `seq` breaks ties between memories added together.
        Index("ix_memories_owner_project_created_at", "owner", "project", "created_at", "seq"),
    )

    # The integer key is the FTS5 table's rowid: an INTEGER PRIMARY KEY is the one rowid SQLite
    # keeps through VACUUM, which external-content FTS5 depends on. It also orders insertions,
    # which `created_at` alone cannot (a batch shares one time). PostgreSQL's may outgrow 32 bits.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(32), unique=True)  # a uuid4 hex: what callers see
    owner: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(63))  # the project's slug
    key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500))
    build_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
