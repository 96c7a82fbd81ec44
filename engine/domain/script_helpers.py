"""The functions BPMN scripts may call, bound to one incident's policy snapshot.

Names start with `itsm_` so they never collide with task data.  Each is a pure
function of its arguments and the snapshot it was bound to; the SLA helper
also reads the incident's clock events and the injected `now`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from engine.domain.priority import (
    PriorityMatrix,
    is_major,
    needs_management_escalation,
    priority_for,
)

HELPER_NAMES: frozenset[str] = frozenset(
    {"itsm_priority", "itsm_major", "itsm_management_escalation", "itsm_sla_due"}
)

DueTimes = Callable[[int], Mapping[str, datetime | None]]


def bind_helpers(
    matrix: PriorityMatrix,
    priorities: Collection[int],
    due_times: DueTimes,
) -> dict[str, Callable[..., Any]]:
    """`priorities` have SLA targets; `due_times(priority)` computes the incident's due
    times for one of them."""

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

    helpers: dict[str, Callable[..., Any]] = {
        "itsm_priority": itsm_priority,
        "itsm_major": itsm_major,
        "itsm_management_escalation": itsm_management_escalation,
        "itsm_sla_due": itsm_sla_due,
    }
    assert frozenset(helpers) == HELPER_NAMES
    return helpers
