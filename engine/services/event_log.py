"""Append-only incident events, with an in-memory copy for the SLA clocks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.sla import SlaTarget
from engine.persistence.models import Event, Incident
from engine.services.clocks import RESPONSE_STOP_TASK, LoggedEvent, due_times

# Only these types move a clock; the log loads nothing else for the SLA.
CLOCK_EVENT_TYPES = (
    "created",
    "task_completed",
    "suspended",
    "resumed",
    "resolved",
    "reopened",
    "closed",
)


def clock_events_of(session: Session, incident_id: int) -> list[LoggedEvent]:
    """The events that move a clock; completions other than the one that stops
    the response clock are left out, so loops do not make this grow."""
    rows = session.execute(
        select(Event.at, Event.type, Event.task)
        .where(
            Event.incident_id == incident_id,
            Event.type.in_(CLOCK_EVENT_TYPES),
            (Event.type != "task_completed") | (Event.task == RESPONSE_STOP_TASK),
        )
        .order_by(Event.id)
    )
    return [LoggedEvent(at, type_, task) for at, type_, task in rows]


class EventLog:
    def __init__(self, session: Session, incident: Incident, loaded: list[LoggedEvent]) -> None:
        self.session = session
        self.incident = incident
        self.clock_relevant = loaded

    @classmethod
    def load(cls, session: Session, incident: Incident) -> EventLog:
        return cls(session, incident, clock_events_of(session, incident.id))

    def add(self, type_: str, actor: str, at: Any, task: str | None = None, **data: Any) -> None:
        self.session.add(
            Event(
                incident_id=self.incident.id, at=at, actor=actor, type=type_, task=task, data=data
            )
        )
        if type_ in CLOCK_EVENT_TYPES:
            self.clock_relevant.append(LoggedEvent(at, type_, task))

    def due_times(self, target: SlaTarget, now: Any) -> dict[str, Any]:
        return dict(due_times(target, self.clock_relevant, now))
