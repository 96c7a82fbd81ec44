"""Append-only incident events, with the clock-relevant ones at hand for the SLA.

Each event is linked into its incident's audit chain when it is flushed
(engine.services.audit.chains); the database refuses to change or delete it.

The clock events are read from the database only when a use case needs them
(most task completions do not move a clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.sla import ClockSegment, ClockState
from engine.persistence.models import Event, Incident
from engine.services.audit import chains as audit_chains
from engine.services.sla.clocks import (
    RESPONSE_STOP_TASK,
    STAGE_ENTERED,
    STAGE_LEFT,
    ClockSpec,
    LoggedEvent,
    clock_states,
    clock_timelines,
)

# Only these types move a clock.
CLOCK_EVENT_TYPES = (
    "created",
    "task_completed",
    "suspended",
    "resumed",
    "resolved",
    "reopened",
    "closed",
    STAGE_ENTERED,
    STAGE_LEFT,
)


def moves_a_clock(type_: str, task: str | None) -> bool:
    return type_ in CLOCK_EVENT_TYPES and (type_ != "task_completed" or task == RESPONSE_STOP_TASK)


def clock_events_of(session: Session, incident_id: int) -> list[LoggedEvent]:
    return clock_events_of_many(session, [incident_id]).get(incident_id, [])


def clock_events_of_many(session: Session, incident_ids: list[int]) -> dict[int, list[LoggedEvent]]:
    """The clock events of several incidents in one query (the worker fires in chunks).

    Completions other than the one that stops the response clock are left
    out, so loops do not make this grow."""
    rows = session.execute(
        select(Event.incident_id, Event.at, Event.type, Event.task, Event.data)
        .where(
            Event.incident_id.in_(incident_ids),
            Event.type.in_(CLOCK_EVENT_TYPES),
            (Event.type != "task_completed") | (Event.task == RESPONSE_STOP_TASK),
        )
        .order_by(Event.id)
    )
    events: dict[int, list[LoggedEvent]] = {incident_id: [] for incident_id in incident_ids}
    for incident_id, at, type_, task, data in rows:
        events[incident_id].append(LoggedEvent(at, type_, task, (data or {}).get("stage")))
    return events


class EventLog:
    def __init__(
        self,
        session: Session,
        incident: Incident,
        *,
        new: bool = False,
        stored: list[LoggedEvent] | None = None,
    ) -> None:
        self.session = session
        self.incident = incident
        # A new incident has no stored events yet: nothing to read. `stored`: read already.
        self._stored: list[LoggedEvent] | None = [] if new else stored
        self._added: list[LoggedEvent] = []
        self.clock_changed = False
        self._tags: dict[str, dict[str, Any]] = {}

    def tag(self, type_: str, **data: Any) -> None:
        """Add these data to every later event of this type written through this log:
        how a use case says why the engine step it runs logged what it logs."""
        self._tags.setdefault(type_, {}).update(data)

    def add(
        self, type_: str, actor: str, at: datetime, task: str | None = None, **data: Any
    ) -> None:
        data = {**self._tags.get(type_, {}), **data}
        audit_chains.stage(
            self.session,
            Event(
                incident_id=self.incident.id, at=at, actor=actor, type=type_, task=task, data=data
            ),
        )
        if moves_a_clock(type_, task):
            self._added.append(LoggedEvent(at, type_, task, data.get("stage")))
            self.clock_changed = True

    def clock_events(self) -> list[LoggedEvent]:
        if self._stored is None:
            with self.session.no_autoflush:
                self._stored = clock_events_of(self.session, self.incident.id)
        return [*self._stored, *self._added]

    def clock_states(self, specs: dict[str, ClockSpec], now: datetime) -> dict[str, ClockState]:
        return clock_states(specs, self.clock_events(), now)

    def clock_timelines(
        self, specs: dict[str, ClockSpec], now: datetime
    ) -> dict[str, list[ClockSegment]]:
        return clock_timelines(specs, self.clock_events(), now)
