"""Who may see an incident: one rule, as a check and as a query."""

from __future__ import annotations

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from engine.domain.roles import STAFF_ROLES
from engine.persistence.models import Incident, UserTaskRow
from engine.services.context import Actor
from engine.services.errors import NotFound


def can_see(session: Session, actor: Actor, incident: Incident) -> bool:
    if actor.has_any(STAFF_ROLES) or incident.reporter_id == actor.id:
        return True
    if "vendor" in actor.roles:
        return bool(
            session.scalar(
                select(
                    exists().where(
                        UserTaskRow.incident_id == incident.id, UserTaskRow.lane == "vendor"
                    )
                )
            )
        )
    return False


def visible_incidents(actor: Actor) -> Select[Incident]:
    """The incidents a user may see, as a query (the same rule as `can_see`)."""
    query = select(Incident)
    if not actor.has_any(STAFF_ROLES):
        visible = Incident.reporter_id == actor.id
        if "vendor" in actor.roles:
            visible = visible | exists().where(
                UserTaskRow.incident_id == Incident.id, UserTaskRow.lane == "vendor"
            )
        query = query.where(visible)
    return query


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
