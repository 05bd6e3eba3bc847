"""a project may link a GitHub repository; a pull request knows where it was opened

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 22:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("repository", sa.String(length=200), nullable=True))
    op.add_column("projects", sa.Column("installation_id", sa.BigInteger(), nullable=True))
    # Every pull request so far was opened on a local bare remote.
    op.add_column(
        "pull_requests",
        sa.Column("provider", sa.String(length=16), nullable=False, server_default="local"),
    )
    op.add_column("pull_requests", sa.Column("number", sa.Integer(), nullable=True))
    op.add_column("pull_requests", sa.Column("url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    for table, column in (
        ("pull_requests", "url"),
        ("pull_requests", "number"),
        ("pull_requests", "provider"),
        ("projects", "installation_id"),
        ("projects", "repository"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
