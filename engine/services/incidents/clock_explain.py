"""Why each SLA clock shows what it shows: its segments, working time and due time.

Everything here is recomputed from the event log and the policy snapshot with
the same pure functions the worker uses, so the explanation cannot disagree
with the figures it explains.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.domain.sla import ClockSegment, ClockState
from engine.persistence.models import Incident
from engine.services.incidents.event_log import EventLog
from engine.services.sla.clocks import ClockSpec
from engine.services.sla.thresholds import MARKS, announced, current_priority, current_specs


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def explain_clocks(session: Session, incident: Incident, now: datetime) -> list[dict[str, Any]]:
    """One entry per clock with a target, in the order response, resolution, stages."""
    log = EventLog(session, incident)
    specs = current_specs(incident)
    states = log.clock_states(specs, now)
    timelines = log.clock_timelines(specs, now)
    done = announced(session, incident.id)
    priority = current_priority(incident)
    return [
        _clock_view(
            name,
            specs[name],
            states[name],
            timelines[name],
            done,
            now,
            priority,
            classified=incident.priority is not None,
        )
        for name in specs
    ]


def _clock_view(
    name: str,
    spec: ClockSpec,
    state: ClockState,
    segments: list[ClockSegment],
    done: set[tuple[str, int]],
    now: datetime,
    priority: int,
    *,
    classified: bool,
) -> dict[str, Any]:
    return {
        "clock": name,
        "state": state.state,
        "target_seconds": state.target_seconds,
        "elapsed_seconds": round(state.elapsed_seconds, 3),
        "percent": round(state.percent, 2),
        "due_at": iso(state.due_at),
        "breached": state.breached,
        "breached_at": iso(state.breached_at),
        "paused_seconds": round(state.suspended_seconds, 3),
        "priority": priority,
        "priority_assumed": not classified,
        "policy_version": spec.policy_version,
        "calendar": spec.calendar_name,
        "announced": [mark for mark in MARKS if (name, mark) in done],
        "segments": [_segment_view(segment) for segment in segments],
        "due": _due_reason(state, spec, now),
    }


def _segment_view(segment: ClockSegment) -> dict[str, Any]:
    return {
        "start": iso(segment.start),
        "end": iso(segment.end),
        "mode": segment.mode,
        "wall_seconds": round(segment.wall_seconds, 3),
        "working_seconds": round(segment.working_seconds, 3),
        "non_working_seconds": round(segment.wall_seconds - segment.working_seconds, 3),
        "elapsed_after": round(segment.elapsed_after, 3),
    }


def _due_reason(state: ClockState, spec: ClockSpec, now: datetime) -> dict[str, Any]:
    """How the due time follows from the figures: `reason` says which rule applied."""
    remaining = max(state.target_seconds - state.elapsed_seconds, 0.0)
    reason: dict[str, Any] = {
        "remaining_seconds": round(remaining, 3),
        "calendar": spec.calendar_name,
    }
    if state.state == "running" and state.due_at is not None:
        wall = (state.due_at - now).total_seconds()
        reason.update(
            reason="running",
            counted_from=iso(now),
            non_working_seconds_until_due=round(max(wall - remaining, 0.0), 3),
            text=(
                f"{_hms(remaining)} of working time remain; counting only the working time of "
                f"calendar {spec.calendar_name} from now, that is reached at "
                f"{state.due_at.isoformat()}"
            ),
        )
    elif state.state == "paused":
        reason.update(
            reason="paused",
            text=f"suspended: no due time until it resumes; {_hms(remaining)} will remain",
        )
    elif state.state == "breached":
        reason.update(
            reason="breached",
            text=f"the target of {_hms(state.target_seconds)} was reached at "
            f"{iso(state.breached_at)}",
        )
    elif state.state == "met":
        reason.update(
            reason="met",
            text=f"stopped after {_hms(state.elapsed_seconds)} of {_hms(state.target_seconds)}",
        )
    else:
        reason.update(reason="not_started", text="the clock has not started")
    return reason


def _hms(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
