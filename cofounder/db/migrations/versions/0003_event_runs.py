"""progress events keyed by workflow run

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# PostgreSQL's own names for unique constraints; SQLite's reflected ones are unnamed, and batch
# mode needs a name to drop them by.
NAMES = {"uq": "%(table_name)s_%(column_0_N_name)s_key"}


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a unique constraint in place, so the table is rebuilt.
    with op.batch_alter_table("build_events", naming_convention=NAMES) as batch:
        run_id = sa.Column("run_id", sa.String(length=64), nullable=False, server_default="")
        batch.add_column(run_id)
        batch.add_column(sa.Column("parent_run_id", sa.String(length=64), nullable=True))
        batch.drop_constraint("build_events_build_id_seq_key", type_="unique")
        batch.create_unique_constraint(
            "build_events_build_id_run_id_seq_key", ["build_id", "run_id", "seq"]
        )
    # Plain ALTERs: rebuilding `builds` in batch mode would drop a table others refer to.
    op.add_column("builds", sa.Column("run_id", sa.String(length=64), nullable=True))
    op.add_column("builds", sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite has had DROP COLUMN since 3.35; alembic's SQLite dialect predates that.
    op.execute("ALTER TABLE builds DROP COLUMN status_at")
    op.execute("ALTER TABLE builds DROP COLUMN run_id")
    # (build, seq) becomes unique again: of several runs' events at one seq, the latest stays.
    op.execute(
        "DELETE FROM build_events WHERE id NOT IN"
        " (SELECT max(id) FROM build_events GROUP BY build_id, seq)"
    )
    with op.batch_alter_table("build_events", naming_convention=NAMES) as batch:
        batch.drop_constraint("build_events_build_id_run_id_seq_key", type_="unique")
        batch.create_unique_constraint("build_events_build_id_seq_key", ["build_id", "seq"])
        batch.drop_column("parent_run_id")
        batch.drop_column("run_id")
