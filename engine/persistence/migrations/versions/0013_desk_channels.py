"""The desk's channels: callers and e-mail on users, attachments, the mail
outbox, inbound mail, webhooks and their deliveries.

`incidents.reporter_id` becomes `created_by_id` (the user who created the
incident) and `caller_id` / `caller_email` say whose incident it is (contract
Part 2: every incident has one caller); existing incidents were created by
their callers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN, never a table copy: SQLite runs with foreign keys on.
    op.add_column("users", sa.Column("email", sa.String(254)))
    op.add_column(
        "users",
        sa.Column("notify_task_ready", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)

    op.drop_index("ix_incidents_reporter", table_name="incidents")
    op.execute("ALTER TABLE incidents RENAME COLUMN reporter_id TO created_by_id")
    op.add_column("incidents", sa.Column("caller_id", sa.Integer()))
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot add a constraint in place (and a table copy would trip the
        # foreign keys of every table referencing incidents); the app sets it.
        op.create_foreign_key(
            "fk_incidents_caller_id_users", "incidents", "users", ["caller_id"], ["id"]
        )
    op.add_column("incidents", sa.Column("caller_email", sa.String(254)))
    op.add_column(
        "incidents",
        sa.Column("caller_link_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("incidents", sa.Column("dedup_key", sa.String(200)))
    op.add_column("incidents", sa.Column("survey_answered_at", _TS))
    op.execute("UPDATE incidents SET caller_id = created_by_id")
    op.create_index("ix_incidents_created_by", "incidents", ["created_by_id"])
    op.create_index("ix_incidents_caller", "incidents", ["caller_id"])
    op.create_index("ix_incidents_caller_email", "incidents", ["caller_email"])
    op.create_index("ix_incidents_dedup_key", "incidents", ["dedup_key"])

    op.add_column(
        "notes", sa.Column("vendor", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("notes", sa.Column("via", sa.String(80)))

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(120), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("vendor", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("uploaded_by", sa.String(254), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.Column("inbound_mail_id", sa.Integer()),
    )
    op.create_index("ix_attachments_incident", "attachments", ["incident_id", "id"])
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id")),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("message_id", sa.String(250), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("claimed_until", _TS),
        sa.Column("sent_at", _TS),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_notifications_incident", "notifications", ["incident_id", "id"])
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])

    op.create_table(
        "inbound_mails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(250)),
        sa.Column("from_address", sa.String(254)),
        sa.Column("subject", sa.String(400), nullable=False, server_default=""),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id")),
    )
    op.create_index("ix_inbound_mails_message_id", "inbound_mails", ["message_id"])
    op.create_index("ix_inbound_mails_sender", "inbound_mails", ["from_address", "received_at"])
    op.create_index("ix_inbound_mails_received", "inbound_mails", ["received_at"])

    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id")),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("claimed_until", _TS),
        sa.Column("response_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS),
    )
    op.create_index("ix_webhook_deliveries_hook", "webhook_deliveries", ["webhook_id", "id"])
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_hook", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index("ix_inbound_mails_received", table_name="inbound_mails")
    op.drop_index("ix_inbound_mails_sender", table_name="inbound_mails")
    op.drop_index("ix_inbound_mails_message_id", table_name="inbound_mails")
    op.drop_table("inbound_mails")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_incident", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_index("ix_attachments_incident", table_name="attachments")
    op.drop_table("attachments")
    _drop_columns("notes", "via", "vendor")
    for index in ("ix_incidents_dedup_key", "ix_incidents_caller_email", "ix_incidents_caller"):
        op.drop_index(index, table_name="incidents")
    op.drop_index("ix_incidents_created_by", table_name="incidents")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_incidents_caller_id_users", "incidents", type_="foreignkey")
    _drop_columns(
        "incidents",
        "survey_answered_at",
        "dedup_key",
        "caller_link_version",
        "caller_email",
        "caller_id",
    )
    op.execute("ALTER TABLE incidents RENAME COLUMN created_by_id TO reporter_id")
    op.create_index("ix_incidents_reporter", "incidents", ["reporter_id"])
    op.drop_index("ix_users_email", table_name="users")
    _drop_columns("users", "notify_task_ready", "email")


def _drop_columns(table: str, *columns: str) -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+ too): a batch copy of a
    # table other tables reference fails with SQLite's foreign keys on.
    for column in columns:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
