"""Vendor organisations: a vendor sees only the incidents escalated to their own.

Creates the organisations with `default`, puts every existing vendor user in
it, and records `default` on every existing vendor task (so that vendors keep
seeing what they saw before).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from engine.persistence.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DEFAULT_ORGANISATION = "default"
VENDOR = "vendor"

_organisations = sa.table(
    "vendor_organisations",
    sa.column("name", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("created_by", sa.String()),
)
_users = sa.table("users", sa.column("id", sa.Integer()), sa.column("vendor_org", sa.String()))
_user_roles = sa.table(
    "user_roles", sa.column("user_id", sa.Integer()), sa.column("role", sa.String())
)
_user_tasks = sa.table(
    "user_tasks", sa.column("lane", sa.String()), sa.column("vendor_org", sa.String())
)

# Plain ADD/DROP COLUMN (SQLite 3.35+ has both): a batch copy of `users` cannot drop
# the table while other tables' foreign keys point at it. The organisation is kept as
# a name for the same reason (SQLite cannot drop a foreign-key column in place).


def upgrade() -> None:
    op.create_table(
        "vendor_organisations",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index(
        "ux_vendor_organisations_folded_name",
        "vendor_organisations",
        [sa.text("lower(name)")],
        unique=True,
    )
    op.add_column("users", sa.Column("vendor_org", sa.String(length=80), nullable=True))
    op.create_index("ix_users_vendor_org", "users", ["vendor_org"])
    op.add_column("user_tasks", sa.Column("vendor_org", sa.String(length=80), nullable=True))
    op.create_index("ix_user_tasks_vendor_org", "user_tasks", ["vendor_org", "incident_id"])

    op.bulk_insert(
        _organisations,
        [{"name": DEFAULT_ORGANISATION, "created_at": datetime.now(UTC), "created_by": "system"}],
    )
    vendors = sa.select(_user_roles.c.user_id).where(_user_roles.c.role == VENDOR)
    op.execute(
        _users.update().where(_users.c.id.in_(vendors)).values(vendor_org=DEFAULT_ORGANISATION)
    )
    op.execute(
        _user_tasks.update()
        .where(_user_tasks.c.lane == VENDOR)
        .values(vendor_org=DEFAULT_ORGANISATION)
    )


def downgrade() -> None:
    op.drop_index("ix_user_tasks_vendor_org", table_name="user_tasks")
    op.drop_column("user_tasks", "vendor_org")
    op.drop_index("ix_users_vendor_org", table_name="users")
    op.drop_column("users", "vendor_org")
    op.drop_index("ux_vendor_organisations_folded_name", table_name="vendor_organisations")
    op.drop_table("vendor_organisations")
