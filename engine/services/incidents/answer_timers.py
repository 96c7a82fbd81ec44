"""What the bundled process's answer timers mean for the incident record.

Contract Part 2, "The reporter's own answers" *(ours)*: when nobody confirms the recovery
within 5 working days of `resolved`, `system` completes `confirm_recovery` with
`recovered: true`; when nobody answers the survey within 5 further working days, the
incident closes without one. In the engine a boundary timer cancels the user task and a
script task stands in for the answer (`elements`); here the cancelled confirmation is
recorded as the system's completion, and the closure says that no survey was answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import Incident, UserTaskRow
from engine.services.incidents.elements import (
    CONFIRM_RECOVERY_TASK,
    NO_SURVEY,
    RECOVERY_ASSUMED_ELEMENT,
    RECOVERY_ASSUMED_VALUES,
    SURVEY_SKIPPED_ELEMENT,
)
from engine.services.incidents.event_log import EventLog


def complete_unanswered(
    session: Session,
    incident: Incident,
    log: EventLog,
    passed: Sequence[str],
    actor: str,
    now: datetime,
) -> None:
    """When the step passed the stand-in for the answer, the confirmation still open counts
    as completed by `actor` (the worker's `system`), as if the reporter had confirmed."""
    if RECOVERY_ASSUMED_ELEMENT not in passed:
        return
    rows = session.scalars(
        select(UserTaskRow).where(
            UserTaskRow.incident_id == incident.id,
            UserTaskRow.name == CONFIRM_RECOVERY_TASK,
            UserTaskRow.state == "ready",
        )
    ).all()
    for row in rows:
        log.add(
            "task_completed",
            actor,
            now,
            task=row.name,
            task_id=row.id,
            values=dict(RECOVERY_ASSUMED_VALUES),
        )
        row.state = "completed"
        row.closed_at = now
        row.closed_by = actor


def closed_event_data(passed: Sequence[str]) -> dict[str, Any]:
    """Extra data of the `closed` event: `survey: "none"` when it closed unanswered."""
    return {"survey": NO_SURVEY} if SURVEY_SKIPPED_ELEMENT in passed else {}
