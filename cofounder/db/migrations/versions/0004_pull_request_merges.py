"""pull requests can be merged

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every pull request so far is open: the server default fills the existing rows.
    state = sa.Column("state", sa.String(length=16), nullable=False, server_default="open")
    op.add_column("pull_requests", state)
    op.add_column("pull_requests", sa.Column("merged_at", sa.DateTime(timezone=True)))
    op.add_column("pull_requests", sa.Column("merge_commit_sha", sa.String(length=64)))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    for column in ("merge_commit_sha", "merged_at", "state"):
        op.execute(f"ALTER TABLE pull_requests DROP COLUMN {column}")
