"""build log: every event of a build's live stream in one ordered table, with the phases
recorded so far copied in

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 06:20:00
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COPY_BATCH = 1000


def upgrade() -> None:
    log = op.create_table(
        "build_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("build_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("build_id", "key"),
    )
    op.create_index("ix_build_log_build_id_id", "build_log", ["build_id", "id"])
    _copy_phases(log)


def _copy_phases(log: sa.Table) -> None:
    """The phases recorded before the log existed, in their order, as the stream showed them."""
    events = sa.table(
        "build_events",
        *(sa.column(name) for name in ("id", "build_id", "run_id", "seq", "status", "attempt")),
        sa.column("error"),
        sa.column("cost_micro_usd"),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    after = 0
    while True:
        query = sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(COPY_BATCH)
        rows = bind.execute(query).mappings().all()
        if not rows:
            return
        bind.execute(sa.insert(log), [_phase_row(row) for row in rows])
        after = rows[-1]["id"]


def _phase_row(row: sa.RowMapping) -> dict[str, object]:
    at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
    data = {
        "seq": row["seq"],
        "run_id": row["run_id"] or "",
        "status": row["status"],
        "attempt": row["attempt"],
        "error": row["error"],
        "at": at.isoformat().replace("+00:00", "Z"),
        "cost_usd": row["cost_micro_usd"] / 1_000_000,
    }
    key = f"phase:{row['run_id'] or ''}:{row['seq']}"
    return {"build_id": row["build_id"], "kind": "phase", "key": key, "data": data, "at": at}


def downgrade() -> None:
    op.drop_index("ix_build_log_build_id_id", table_name="build_log")
    op.drop_table("build_log")
