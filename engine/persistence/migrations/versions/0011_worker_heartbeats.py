"""Worker heartbeats: each timer worker records when it last ran, for /healthz.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(255), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_every_seconds", sa.Integer(), nullable=False),
    )
    op.create_index("ix_worker_heartbeats_last_beat_at", "worker_heartbeats", ["last_beat_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_last_beat_at", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
