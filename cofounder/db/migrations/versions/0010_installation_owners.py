"""a GitHub App installation belongs to the user who claimed it

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: the installations recorded so far belong to nobody until their user claims them.
    op.add_column("github_installations", sa.Column("owner", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_github_installations_owner", "github_installations", ["owner"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_github_installations_owner", table_name="github_installations")
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    op.execute("ALTER TABLE github_installations DROP COLUMN owner")
