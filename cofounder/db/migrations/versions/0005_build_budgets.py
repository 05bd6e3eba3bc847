"""a build's budget is kept with it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Builds from before budgets have none (null): no limit was ever set for them.
    op.add_column("builds", sa.Column("budget_micro_usd", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    op.execute("ALTER TABLE builds DROP COLUMN budget_micro_usd")
