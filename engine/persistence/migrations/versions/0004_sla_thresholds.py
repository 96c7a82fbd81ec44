"""SLA thresholds: when the worker must look next, and what it has announced.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("sla_next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_incidents_sla_next_check", ["sla_next_check_at"])
    op.create_table(
        "sla_announcements",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("clock", sa.String(length=40), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("incident_id", "clock", "percent"),
    )


def downgrade() -> None:
    op.drop_table("sla_announcements")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_sla_next_check")
        batch.drop_column("sla_next_check_at")
