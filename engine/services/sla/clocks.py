"""The incident's SLA clocks, derived from its event log (never stored twice).

Response and resolution start at `created`; response stops when
`record_incident` completes; resolution stops at `resolved` and restarts at
`reopened`.  A stage clock (service_desk, level2, level3, vendor) counts the
time the incident spends with that tier: it runs from `stage_entered` to
`stage_left`, cumulatively across reassign and reopen loops.  While the
incident is suspended no clock counts.  The due-time arithmetic itself lives
in `engine.domain.sla` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.domain.sla import (
    ClockEvent,
    ClockEventKind,
    ClockSegment,
    ClockState,
    WorkCalendar,
    clock_segments,
    clock_state,
)

RESPONSE = "response"
RESOLUTION = "resolution"
RESPONSE_STOP_TASK = "record_incident"
# The tiers an incident can be with, named as their lanes (contract: `clock` of sla events).
STAGES = ("service_desk", "level2", "level3", "vendor")
STAGE_ENTERED = "stage_entered"
STAGE_LEFT = "stage_left"


@dataclass(frozen=True)
class LoggedEvent:
    at: datetime
    type: str
    task: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class ClockSpec:
    """What a clock counts against: its target, in which calendar, from which policy version."""

    target_seconds: int
    calendar: WorkCalendar
    calendar_name: str
    policy_version: int | None


def clock_events(events: Iterable[LoggedEvent]) -> dict[str, list[ClockEvent]]:
    clocks: dict[str, list[ClockEvent]] = {name: [] for name in (RESPONSE, RESOLUTION, *STAGES)}
    for event in events:
        if event.type == "created":
            for name in (RESPONSE, RESOLUTION):
                clocks[name].append(ClockEvent(event.at, "start"))
        elif event.type in ("suspended", "resumed"):
            pause: ClockEventKind = "suspend" if event.type == "suspended" else "resume"
            for per_clock in clocks.values():
                per_clock.append(ClockEvent(event.at, pause))
        elif event.type == "task_completed" and event.task == RESPONSE_STOP_TASK:
            clocks[RESPONSE].append(ClockEvent(event.at, "stop"))
        elif event.type in ("resolved", "closed"):
            clocks[RESOLUTION].append(ClockEvent(event.at, "stop"))
        elif event.type == "reopened":
            clocks[RESOLUTION].append(ClockEvent(event.at, "start"))
        elif event.type in (STAGE_ENTERED, STAGE_LEFT) and event.stage in STAGES:
            move: ClockEventKind = "start" if event.type == STAGE_ENTERED else "stop"
            clocks[event.stage].append(ClockEvent(event.at, move))
    return clocks


def clock_states(
    specs: Mapping[str, ClockSpec], events: Iterable[LoggedEvent], now: datetime
) -> dict[str, ClockState]:
    """The state of every clock that has a target (a snapshot without stage targets has none)."""
    per_clock = clock_events(events)
    return {
        name: clock_state(spec.target_seconds, per_clock[name], now, calendar=spec.calendar)
        for name, spec in specs.items()
    }


def clock_timelines(
    specs: Mapping[str, ClockSpec], events: Iterable[LoggedEvent], now: datetime
) -> dict[str, list[ClockSegment]]:
    per_clock = clock_events(events)
    return {
        name: clock_segments(per_clock[name], now, calendar=spec.calendar)
        for name, spec in specs.items()
    }
