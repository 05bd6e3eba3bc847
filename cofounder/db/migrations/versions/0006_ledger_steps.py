"""each ledger row names the build step its call was made for

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Calls outside a step (planning, review) and rows from before steps have none (null).
    op.add_column("usage_ledger", sa.Column("step", sa.Integer(), nullable=True))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    op.execute("ALTER TABLE usage_ledger DROP COLUMN step")
