"""The functions BPMN scripts may call, bound to one incident's policy snapshot.

Names start with `itsm_` so they never collide with task data.  Each is a pure
function of its arguments and the snapshot it was bound to; the SLA helper
also reads the incident's clock events and the injected `now`.  The working-days
helper gives a timer's due moment: `itsm_working_days_later(5)` is the ISO date (with
its zone, as date timers need) at which 5 working days of the incident's resolution
calendar have passed since now (`engine.domain.working_days`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.domain.priority import (
    PriorityMatrix,
    is_major,
    needs_management_escalation,
    priority_for,
)

HELPER_NAMES: frozenset[str] = frozenset(
    {
        "itsm_priority",
        "itsm_major",
        "itsm_management_escalation",
        "itsm_sla_due",
        "itsm_working_days_later",
    }
)
# Timers of weeks, not years: the sandbox is handed this many due moments at most.
MAX_WORKING_DAYS = 60

DueTimes = Callable[[int], Mapping[str, datetime | None]]
# The due moments of 1, 2, ... MAX_WORKING_DAYS working days from now, computed on first use.
WorkingDayEnds = Callable[[], Sequence[datetime]]


def _no_calendar() -> Sequence[datetime]:
    raise ValueError("no business calendar is bound: working days cannot be counted")


def bind_helpers(
    matrix: PriorityMatrix,
    priorities: Collection[int],
    due_times: DueTimes,
    working_day_ends: WorkingDayEnds = _no_calendar,
) -> dict[str, Callable[..., Any]]:
    """`priorities` have SLA targets; `due_times(priority)` computes the incident's due
    times for one of them; `working_day_ends()` the incident's working-day due moments."""

    def itsm_priority(impact: object, urgency: object) -> int:
        return priority_for(matrix, impact, urgency)

    def itsm_major(impact: object, priority: int) -> bool:
        return is_major(impact, priority)

    def itsm_management_escalation(priority: int, major: bool) -> bool:
        return needs_management_escalation(priority, major)

    def itsm_sla_due(priority: int) -> dict[str, str | None]:
        if int(priority) not in priorities:
            raise ValueError(f"no SLA policy for priority {priority}")
        due = due_times(int(priority))
        return {name: (value.isoformat() if value else None) for name, value in due.items()}

    def itsm_working_days_later(days: object) -> str:
        if isinstance(days, bool) or not isinstance(days, int):
            raise ValueError(f"working days must be a whole number, got {days!r}")
        if not 1 <= days <= MAX_WORKING_DAYS:
            raise ValueError(f"working days must be between 1 and {MAX_WORKING_DAYS}, got {days}")
        ends = working_day_ends()
        if len(ends) < days:
            raise ValueError(f"the calendar has fewer than {days} working days ahead")
        return ends[days - 1].isoformat()

    helpers: dict[str, Callable[..., Any]] = {
        "itsm_priority": itsm_priority,
        "itsm_major": itsm_major,
        "itsm_management_escalation": itsm_management_escalation,
        "itsm_sla_due": itsm_sla_due,
        "itsm_working_days_later": itsm_working_days_later,
    }
    assert frozenset(helpers) == HELPER_NAMES
    return helpers
