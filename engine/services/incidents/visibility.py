"""Who may see an incident: one rule, as a check and as a query."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.orm import Session, aliased

from engine.domain.roles import INTEGRATION, STAFF_ROLES
from engine.persistence.models import Incident, UserTaskRow
from engine.services.context import Actor
from engine.services.errors import NotFound
from engine.services.incidents.vendors import VENDOR_LANE


def visible_condition(actor: Actor) -> ColumnElement[bool] | None:
    """The one rule of who sees an incident, as SQL over `Incident` (None: every one).

    Staff see every incident; a caller their own; a vendor also those that have
    or had a vendor task for their own organisation. Task lists and task
    operations use it too, so that a lane never opens an incident its member may
    not see. An integration user (a program) reads every incident, as its caller
    sees it (see `audience`)."""
    if actor.has_any(STAFF_ROLES) or INTEGRATION in actor.roles:
        return None
    visible: ColumnElement[bool] = Incident.caller_id == actor.id
    if VENDOR_LANE in actor.roles and actor.vendor_org is not None:
        # Aliased: task queries put this beside their own UserTaskRow.
        vendor_task = aliased(UserTaskRow)
        visible = visible | exists().where(
            vendor_task.incident_id == Incident.id,
            vendor_task.lane == VENDOR_LANE,
            vendor_task.vendor_org == actor.vendor_org,
        )
    return visible


def vendor_task_condition(actor: Actor) -> ColumnElement[bool] | None:
    """For a vendor, as SQL over `UserTaskRow`: a vendor-lane task is theirs only if it
    was handed to their organisation (None: nothing to narrow; without the vendor role
    the lane check already keeps them out). Staff who are also vendors are narrowed
    too: seeing every incident is not working for every vendor."""
    if VENDOR_LANE not in actor.roles:
        return None
    if actor.vendor_org is None:
        return UserTaskRow.lane != VENDOR_LANE
    return or_(UserTaskRow.lane != VENDOR_LANE, UserTaskRow.vendor_org == actor.vendor_org)


def task_conditions(actor: Actor) -> list[ColumnElement[bool]]:
    """What a task row (joined to its `Incident`) must meet for the actor to list it or
    work on it, besides its lane being one of theirs: the incident is visible to them,
    and a vendor task is their organisation's."""
    return [
        condition
        for condition in (visible_condition(actor), vendor_task_condition(actor))
        if condition is not None
    ]


def can_see(session: Session, actor: Actor, incident: Incident) -> bool:
    condition = visible_condition(actor)
    if condition is None or incident.caller_id == actor.id:
        return True
    found = session.scalar(select(Incident.id).where(Incident.id == incident.id, condition))
    return found is not None


def visible_incidents(actor: Actor) -> Select[Incident]:
    """The incidents a user may see, as a query."""
    condition = visible_condition(actor)
    query = select(Incident)
    return query if condition is None else query.where(condition)


def load_visible(
    session: Session, actor: Actor, incident_id: int, *, for_update: bool = False
) -> Incident:
    incident = session.get(
        Incident, incident_id, with_for_update={"of": Incident} if for_update else None
    )
    if incident is None or not can_see(session, actor, incident):
        # Not telling a reporter that someone else's incident exists.
        raise NotFound(f"incident {incident_id} not found")
    return incident
