"""Tamper-evident audit trail: events HMAC-chained per incident, administration
events in their own chain, a head row per chain, and triggers that refuse
UPDATE and DELETE on both event tables.

Existing events are chained in id order within each incident, with the key the
app will use (engine.persistence.audit_key: ITSM_AUDIT_KEY or the key file).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from engine.domain.audit import GENESIS_HASH, ChainContent, ChainHead, incident_chain, next_link
from engine.persistence.audit_key import audit_key_for
from engine.persistence.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("events", "admin_events")
CHAIN_COLUMNS = ("chain", "sequence", "previous_hash", "hash")
BACKFILL_BATCH = 1000

_events = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("incident_id", sa.Integer),
    sa.column("at", UTCDateTime),
    sa.column("actor", sa.String),
    sa.column("type", sa.String),
    sa.column("task", sa.String),
    sa.column("data", sa.JSON),
    sa.column("chain", sa.String),
    sa.column("sequence", sa.Integer),
    sa.column("previous_hash", sa.String),
    sa.column("hash", sa.String),
)
_heads = sa.table(
    "audit_chain_heads",
    sa.column("chain", sa.String),
    sa.column("sequence", sa.Integer),
    sa.column("hash", sa.String),
)


def _chain_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("chain", sa.String(80), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.String(80), primary_key=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "admin_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        *_chain_columns(),
    )
    op.create_index("ix_admin_events_type", "admin_events", ["type"])
    op.create_index(
        "ux_admin_events_chain_sequence", "admin_events", ["chain", "sequence"], unique=True
    )

    # Nullable while the existing rows are chained, then NOT NULL.
    for column in _chain_columns():
        column.nullable = True
        op.add_column("events", column)
    _chain_existing_events(bind, audit_key_for(bind.engine.url))
    # On SQLite this is a copy of `events`, which no other table references.
    with op.batch_alter_table("events") as batch:
        for column in _chain_columns():
            batch.alter_column(column.name, existing_type=column.type, nullable=False)
    op.create_index("ux_events_chain_sequence", "events", ["chain", "sequence"], unique=True)
    _create_append_only_triggers(bind.dialect.name)


def _chain_existing_events(bind: sa.Connection, key: bytes) -> None:
    rows = bind.execute(
        sa.select(
            _events.c.id,
            _events.c.incident_id,
            _events.c.at,
            _events.c.actor,
            _events.c.type,
            _events.c.task,
            _events.c.data,
        ).order_by(_events.c.incident_id, _events.c.id)
    ).all()
    heads: dict[str, ChainHead] = {}
    updates: list[dict[str, object]] = []
    for id_, incident_id, at, actor, type_, task, data in rows:
        chain = incident_chain(incident_id)
        head = heads.get(chain, ChainHead(chain, 0, GENESIS_HASH))
        content = ChainContent(chain, head.sequence + 1, at, actor, type_, task, data or {})
        heads[chain] = next_link(key, head, content)
        updates.append(
            {
                "event_id": id_,
                "new_chain": chain,
                "new_sequence": content.sequence,
                "new_previous_hash": head.hash,
                "new_hash": heads[chain].hash,
            }
        )
    statement = (
        _events.update()
        .where(_events.c.id == sa.bindparam("event_id"))
        .values(
            chain=sa.bindparam("new_chain"),
            sequence=sa.bindparam("new_sequence"),
            previous_hash=sa.bindparam("new_previous_hash"),
            hash=sa.bindparam("new_hash"),
        )
    )
    for start in range(0, len(updates), BACKFILL_BATCH):
        bind.execute(statement, updates[start : start + BACKFILL_BATCH])
    if heads:
        bind.execute(
            _heads.insert(),
            [{"chain": h.chain, "sequence": h.sequence, "hash": h.hash} for h in heads.values()],
        )


def _create_append_only_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit events are append-only: % on % refused', "
            "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'audit events are append-only: "
                f"{operation} on {table} refused'); END"
            )


def _drop_append_only_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def downgrade() -> None:
    """Back to unchained events; the administration events are dropped with their table."""
    _drop_append_only_triggers(op.get_bind().dialect.name)
    op.drop_index("ux_events_chain_sequence", table_name="events")
    for name in reversed(CHAIN_COLUMNS):
        op.drop_column("events", name)
    op.drop_index("ux_admin_events_chain_sequence", table_name="admin_events")
    op.drop_index("ix_admin_events_type", table_name="admin_events")
    op.drop_table("admin_events")
    op.drop_table("audit_chain_heads")
