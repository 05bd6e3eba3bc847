"""each iteration of a build's review session, recorded once

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_iterations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("build_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("feedback_summary", sa.Text(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("reply_url", sa.String(length=500), nullable=True),
        sa.Column("reply_body", sa.Text(), nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("build_id", "number"),
    )


def downgrade() -> None:
    op.drop_table("review_iterations")
