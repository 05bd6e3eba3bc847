"""project memory: what was decided, built and asked in each owner's project, with the
dialect's own full-text index over it

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table over memories.text, keyed by memories.seq (an INTEGER
# PRIMARY KEY, so the rowid VACUUM keeps). Triggers keep it in step; a delete or an update must
# hand FTS5 the old text exactly, which the triggers' `old` row does.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE memories_fts USING fts5("
    "text, content='memories', content_rowid='seq', tokenize='porter unicode61')",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN"
    " INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text); END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN"
    " INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);"
    " END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE ON memories BEGIN"
    " INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);"
    " INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text); END",
]
SQLITE_FTS_DROP = [
    "DROP TRIGGER memories_fts_update",
    "DROP TRIGGER memories_fts_delete",
    "DROP TRIGGER memories_fts_insert",
    "DROP TABLE memories_fts",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "memories",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("build_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_search_columns(dialect),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("owner", "project", "key"),
    )
    op.create_index(
        "ix_memories_owner_project_created_at",
        "memories",
        ["owner", "project", "created_at", "seq"],
    )
    if dialect == "postgresql":
        op.create_index(
            "ix_memories_text_search", "memories", ["text_search"], postgresql_using="gin"
        )
    elif dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)


def _search_columns(dialect: str) -> list[sa.Column]:
    """PostgreSQL's stemmed words of `text`, kept by the database itself (not mapped in the ORM:
    cofounder.db.memory.SEARCH_COLUMN names it for queries)."""
    if dialect != "postgresql":
        return []
    words = sa.Computed("to_tsvector('english', text)", persisted=True)
    return [sa.Column("text_search", postgresql.TSVECTOR(), words, nullable=True)]


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS_DROP:
            op.execute(statement)
    # PostgreSQL's GIN index and generated column go with the table.
    op.drop_index("ix_memories_owner_project_created_at", table_name="memories")
    op.drop_table("memories")
