"""Stage clocks: targets per tier in each SLA policy, and the tier holding each incident.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_MINUTE = 60
_HOUR = 60 * _MINUTE
# Frozen here: the defaults of this revision (the running code's live in engine.domain.sla).
STAGE_TARGETS = {
    1: {
        "service_desk": 30 * _MINUTE,
        "level2": 2 * _HOUR,
        "level3": 2 * _HOUR,
        "vendor": 4 * _HOUR,
    },
    2: {"service_desk": 1 * _HOUR, "level2": 6 * _HOUR, "level3": 6 * _HOUR, "vendor": 12 * _HOUR},
    3: {
        "service_desk": 4 * _HOUR,
        "level2": 12 * _HOUR,
        "level3": 12 * _HOUR,
        "vendor": 24 * _HOUR,
    },
    4: {
        "service_desk": 8 * _HOUR,
        "level2": 36 * _HOUR,
        "level3": 36 * _HOUR,
        "vendor": 72 * _HOUR,
    },
    5: {
        "service_desk": 24 * _HOUR,
        "level2": 72 * _HOUR,
        "level3": 72 * _HOUR,
        "vendor": 168 * _HOUR,
    },
}
TIERS = ("service_desk", "level2", "level3", "vendor")


def _stages(priority: int) -> dict:
    targets = STAGE_TARGETS.get(priority, {})
    return {stage: {"target_seconds": s, "calendar": None} for stage, s in targets.items()}


def upgrade() -> None:
    for table in ("sla_policies", "sla_policy_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("stages", sa.JSON(), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=80), nullable=True))
        batch.create_index("ix_incidents_stage", ["stage"])
    bind = op.get_bind()
    policies = sa.table(
        "sla_policies", sa.column("priority", sa.Integer), sa.column("stages", sa.JSON)
    )
    # The current version of each priority gains the stage targets; older versions had none.
    for priority in STAGE_TARGETS:
        bind.execute(
            policies.update()
            .where(policies.c.priority == priority)
            .values(stages=_stages(priority))
        )
    current = sa.table(
        "sla_policies", sa.column("priority", sa.Integer), sa.column("version", sa.Integer)
    )
    history = sa.table(
        "sla_policy_versions",
        sa.column("priority", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("stages", sa.JSON),
    )
    for priority, version in bind.execute(sa.select(current.c.priority, current.c.version)):
        bind.execute(
            history.update()
            .where(history.c.priority == priority, history.c.version == version)
            .values(stages=_stages(priority))
        )
    bind.execute(history.update().where(history.c.stages.is_(None)).values(stages={}))
    bind.execute(policies.update().where(policies.c.stages.is_(None)).values(stages={}))
    for table in ("sla_policies", "sla_policy_versions"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("stages", existing_type=sa.JSON(), nullable=False)
    _backfill_incident_stages(bind)


def _backfill_incident_stages(bind: sa.engine.Connection) -> None:
    """Open incidents get the tiers of their ready tasks (their snapshots have no stage
    targets, so no stage clock runs for them; the column only stays truthful)."""
    tasks = sa.table(
        "user_tasks",
        sa.column("incident_id", sa.Integer),
        sa.column("lane", sa.String),
        sa.column("state", sa.String),
    )
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("stage", sa.String),
    )
    rows = bind.execute(
        sa.select(tasks.c.incident_id, tasks.c.lane)
        .join(incidents, incidents.c.id == tasks.c.incident_id)
        .where(
            tasks.c.state == "ready",
            tasks.c.lane.in_(TIERS),
            incidents.c.status.in_(("new", "in_progress")),
        )
    ).all()
    lanes: dict[int, set[str]] = {}
    for incident_id, lane in rows:
        lanes.setdefault(incident_id, set()).add(lane)
    for incident_id, held in lanes.items():
        bind.execute(
            incidents.update()
            .where(incidents.c.id == incident_id)
            .values(stage=",".join(t for t in TIERS if t in held))
        )


def downgrade() -> None:
    # Not in batch mode: re-creating `incidents` on SQLite would trip the foreign keys
    # that point at it; SQLite >= 3.35 drops an unindexed column in place.
    op.drop_index("ix_incidents_stage", table_name="incidents")
    op.drop_column("incidents", "stage")
    for table in ("sla_policy_versions", "sla_policies"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("stages")
