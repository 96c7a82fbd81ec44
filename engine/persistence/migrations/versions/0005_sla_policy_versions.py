"""SLA policy versions (every change kept) and named business calendars.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TAIPEI_DAY = [["09:00", "12:00"], ["13:00", "18:00"]]
CALENDARS = {
    "24x7": ("UTC", {}),
    "taiwan_business_hours": (
        "Asia/Taipei",
        {
            "timezone": "Asia/Taipei",
            "weekly": {day: TAIPEI_DAY for day in ("mon", "tue", "wed", "thu", "fri")},
            "use_taiwan_holidays": True,
        },
    ),
}


def upgrade() -> None:
    op.create_table(
        "sla_policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("response_seconds", sa.Integer(), nullable=False),
        sa.Column("resolution_seconds", sa.Integer(), nullable=False),
        sa.Column("calendar", sa.String(length=80), nullable=False),
        sa.Column("changed_by", sa.String(length=80), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("priority", "version"),
    )
    op.create_table(
        "business_calendars",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("timezone", sa.String(length=60), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    _seed()


def _seed() -> None:
    now = datetime.now(UTC)
    calendars = sa.table(
        "business_calendars",
        sa.column("name", sa.String),
        sa.column("timezone", sa.String),
        sa.column("definition", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        calendars,
        [
            {"name": name, "timezone": tz, "definition": definition, "created_at": now}
            for name, (tz, definition) in CALENDARS.items()
        ],
    )
    # The targets in force now become the first recorded version of each priority.
    policies = sa.table(
        "sla_policies",
        sa.column("priority", sa.Integer),
        sa.column("response_seconds", sa.Integer),
        sa.column("resolution_seconds", sa.Integer),
        sa.column("calendar", sa.String),
        sa.column("version", sa.Integer),
    )
    current = op.get_bind().execute(sa.select(policies).order_by(policies.c.priority)).all()
    versions = sa.table(
        "sla_policy_versions",
        sa.column("priority", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("response_seconds", sa.Integer),
        sa.column("resolution_seconds", sa.Integer),
        sa.column("calendar", sa.String),
        sa.column("changed_by", sa.String),
        sa.column("changed_at", sa.DateTime(timezone=True)),
        sa.column("note", sa.Text),
    )
    if current:
        op.bulk_insert(
            versions,
            [
                {
                    "priority": row.priority,
                    "version": row.version,
                    "response_seconds": row.response_seconds,
                    "resolution_seconds": row.resolution_seconds,
                    "calendar": row.calendar,
                    "changed_by": "system",
                    "changed_at": now,
                    "note": "targets in force when versioning began",
                }
                for row in current
            ],
        )


def downgrade() -> None:
    # `sla_policies` keeps the current targets and version, so nothing in force is lost.
    op.drop_table("business_calendars")
    op.drop_table("sla_policy_versions")
