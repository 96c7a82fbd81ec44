"""`GET /api/v1/tasks`: the ready tasks of the actor's lanes, oldest first, one page
at a time, with the filters of contract Part 2 ("Lists"): `incident_id`, `record`
(a record's number), `lane` and `claimed` (`me` or `none`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select

from engine.domain.ids import is_row_id
from engine.domain.paging import Page, parse_page
from engine.persistence.models import Incident, UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Invalid
from engine.services.incidents.audience import audience_of, names_for, shown_task
from engine.services.incidents.views import task_summary
from engine.services.paging import Total, counted, paged
from engine.services.tasks.commands import ready_in_my_lanes

CLAIMED = ("me", "none")


@dataclass(frozen=True)
class TaskList:
    items: list[dict[str, Any]]
    total: Total


def list_tasks(ctx: ServiceContext, actor: Actor, args: Mapping[str, str]) -> TaskList:
    page, conditions = _parse(actor, args)
    statement = (
        select(UserTaskRow, Incident)
        .join(Incident, Incident.id == UserTaskRow.incident_id)
        .where(*ready_in_my_lanes(actor), *conditions)
    )
    with ctx.db.read() as session:
        total = counted(session, statement)
        ordered = statement.order_by(UserTaskRow.created_at, UserTaskRow.id)
        rows = session.execute(paged(ordered, page)).all()
        tasks = [task_summary(row, incident) for row, incident in rows]
        names = names_for(session, audience_of(actor), tasks=tasks)
        return TaskList([shown_task(task, names) for task in tasks], total)


def _parse(actor: Actor, args: Mapping[str, str]) -> tuple[Page, list[ColumnElement[bool]]]:
    page, errors = parse_page(args)
    conditions: list[ColumnElement[bool]] = []
    incident_id = args.get("incident_id") or ""
    if incident_id:
        if not (incident_id.isascii() and incident_id.isdigit() and is_row_id(int(incident_id))):
            errors["incident_id"] = "must be an incident id"
        else:
            conditions.append(UserTaskRow.incident_id == int(incident_id))
    record = (args.get("record") or "").strip()
    if record:
        if len(record) > 20:
            errors["record"] = "must be a record number such as INC-000123"
        else:
            # Tasks belong to incidents today; another kind's number matches none.
            conditions.append(Incident.number == record.upper())
    lane = args.get("lane") or ""
    if lane:
        if len(lane) > 40:
            errors["lane"] = "must be a lane name"
        else:
            conditions.append(UserTaskRow.lane == lane)
    claimed = args.get("claimed") or ""
    if claimed == "me":
        conditions.append(UserTaskRow.claimed_by == actor.id)
    elif claimed == "none":
        conditions.append(UserTaskRow.claimed_by.is_(None))
    elif claimed:
        errors["claimed"] = "must be one of: me, none"
    if errors:
        raise Invalid("invalid query", errors)
    return page, conditions
