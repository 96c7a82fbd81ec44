"""SLA thresholds: when the next one falls due for an incident.

Every save that moves a clock sets `incidents.sla_next_check_at` to the
earliest threshold (50 %, 75 %, 100 % of a target) not yet announced. The
worker picks incidents whose next check has come, each in its own
transaction, and records the announcement row, the event and the next check
together: a threshold fires exactly once, however many workers run and
however often they restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.sla import ClockState, threshold_instant
from engine.persistence.models import Incident, SlaAnnouncement
from engine.services.sla.clocks import ClockSpec
from engine.services.sla.snapshot import clock_specs

MARKS = (50, 75, 100)
SYSTEM = "system"
# The process reacts to SLA escalations through this BPMN signal (an event
# subprocess in the default process starts a review for the incident manager).
ESCALATION_SIGNAL = "sla_escalation"
ESCALATED_CLOCKS = ("resolution",)
EARLY_ESCALATION = {1: 75, 2: 75}  # P1/P2 escalate at 75 %, others at the breach


def current_priority(incident: Incident) -> int:
    """The incident's priority; until classified, P1 (never shown as relaxed)."""
    if incident.priority is not None:
        return incident.priority
    return min(int(p) for p in incident.policy_snapshot["sla"])


def current_specs(incident: Incident) -> dict[str, ClockSpec]:
    """Targets and calendars of every clock at the incident's current priority."""
    return clock_specs(incident.policy_snapshot, current_priority(incident))


def announced(session: Session, incident_id: int) -> set[tuple[str, int]]:
    return announced_many(session, [incident_id])[incident_id]


def announced_many(session: Session, incident_ids: list[int]) -> dict[int, set[tuple[str, int]]]:
    rows = session.execute(
        select(SlaAnnouncement.incident_id, SlaAnnouncement.clock, SlaAnnouncement.percent).where(
            SlaAnnouncement.incident_id.in_(incident_ids)
        )
    )
    done: dict[int, set[tuple[str, int]]] = {incident_id: set() for incident_id in incident_ids}
    for incident_id, clock, percent in rows:
        done[incident_id].add((clock, percent))
    return done


def schedule(
    session: Session,
    incident: Incident,
    states: dict[str, ClockState],
    now: datetime,
    done: set[tuple[str, int]] | None = None,
    specs: dict[str, ClockSpec] | None = None,
) -> None:
    """Set the next check to the earliest threshold still to announce."""
    if incident.status == "closed":
        incident.sla_next_check_at = None
        return
    done = announced(session, incident.id) if done is None else done
    specs = current_specs(incident) if specs is None else specs
    moments = [
        moment
        for clock, state in states.items()
        for mark in MARKS
        if (clock, mark) not in done
        and (moment := threshold_instant(state, mark, now, calendar=specs[clock].calendar))
        is not None
    ]
    if incident.status == "suspended" and incident.resume_by is not None:
        moments.append(incident.resume_by)  # the worker resumes it then
    incident.sla_next_check_at = min(moments) if moments else None


