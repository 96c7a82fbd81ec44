"""The incident's SLA clocks, derived from its event log (never stored twice).

Both clocks start at `created`; response stops when `record_incident`
completes; resolution stops at `resolved` and restarts at `reopened`; while
suspended no clock counts.  The due-time arithmetic itself lives in
`engine.domain.sla` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from engine.domain.sla import (
    TWENTY_FOUR_SEVEN,
    ClockEvent,
    ClockState,
    SlaTarget,
    WorkCalendar,
    clock_state,
)

RESPONSE = "response"
RESOLUTION = "resolution"
RESPONSE_STOP_TASK = "record_incident"


@dataclass(frozen=True)
class LoggedEvent:
    at: datetime
    type: str
    task: str | None = None


def clock_events(events: Iterable[LoggedEvent]) -> dict[str, list[ClockEvent]]:
    clocks: dict[str, list[ClockEvent]] = {RESPONSE: [], RESOLUTION: []}
    for event in events:
        both = (RESPONSE, RESOLUTION)
        if event.type == "created":
            for name in both:
                clocks[name].append(ClockEvent(event.at, "start"))
        elif event.type in ("suspended", "resumed"):
            for name in both:
                clocks[name].append(
                    ClockEvent(event.at, "suspend" if event.type == "suspended" else "resume")
                )
        elif event.type == "task_completed" and event.task == RESPONSE_STOP_TASK:
            clocks[RESPONSE].append(ClockEvent(event.at, "stop"))
        elif event.type in ("resolved", "closed"):
            clocks[RESOLUTION].append(ClockEvent(event.at, "stop"))
        elif event.type == "reopened":
            clocks[RESOLUTION].append(ClockEvent(event.at, "start"))
    return clocks


def clock_states(
    target: SlaTarget,
    events: Iterable[LoggedEvent],
    now: datetime,
    calendar: WorkCalendar = TWENTY_FOUR_SEVEN,
) -> dict[str, ClockState]:
    per_clock = clock_events(events)
    return {
        RESPONSE: clock_state(target.response_seconds, per_clock[RESPONSE], now, calendar=calendar),
        RESOLUTION: clock_state(
            target.resolution_seconds, per_clock[RESOLUTION], now, calendar=calendar
        ),
    }
