"""plans and billing: a user's tier and Stripe standing, applied Stripe events, metered ledger
rows, and build requests by idempotency key

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("tier", sa.String(32), nullable=False, server_default="free"))
        users.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
        users.add_column(sa.Column("stripe_customer_id", sa.String(64), nullable=True))
        users.add_column(sa.Column("stripe_subscription_id", sa.String(64), nullable=True))
        users.add_column(sa.Column("subscription_status", sa.String(32), nullable=True))
        users.add_column(sa.Column("billing_period", sa.String(16), nullable=True))
        users.add_column(
            sa.Column("billing_hold", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        users.add_column(
            sa.Column("billing_version", sa.Integer(), nullable=False, server_default="0")
        )
        users.add_column(sa.Column("metered_since", sa.DateTime(timezone=True), nullable=True))
        users.create_unique_constraint("uq_users_stripe_customer_id", ["stripe_customer_id"])
    with op.batch_alter_table("usage_ledger") as ledger:
        ledger.add_column(sa.Column("metered_at", sa.DateTime(timezone=True), nullable=True))
        ledger.add_column(sa.Column("meter_error", sa.Text(), nullable=True))
        ledger.create_index("ix_usage_ledger_metered_at", ["metered_at"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "build_requests",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("build_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key"),
    )


def downgrade() -> None:
    op.drop_table("build_requests")
    op.drop_table("stripe_events")
    with op.batch_alter_table("usage_ledger") as ledger:
        ledger.drop_index("ix_usage_ledger_metered_at")
        ledger.drop_column("meter_error")
        ledger.drop_column("metered_at")
    with op.batch_alter_table("users") as users:
        users.drop_constraint("uq_users_stripe_customer_id", type_="unique")
        for column in (
            "metered_since",
            "billing_version",
            "billing_hold",
            "billing_period",
            "subscription_status",
            "stripe_subscription_id",
            "stripe_customer_id",
            "admitted_at",
            "tier",
        ):
            users.drop_column(column)
