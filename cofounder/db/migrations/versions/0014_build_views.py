"""a parked build's live view is kept with its row

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 11:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows of builds from before this have no view: they are read from their workflow, as before.
    op.add_column("builds", sa.Column("view", sa.Text(), nullable=True))
    op.add_column("builds", sa.Column("steered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    op.execute("ALTER TABLE builds DROP COLUMN steered_at")
    op.execute("ALTER TABLE builds DROP COLUMN view")
