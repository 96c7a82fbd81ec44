"""What the bundled process's answer timers mean for the incident record.

Contract Part 2, "The reporter's own answers" *(ours)*: when nobody confirms the recovery
within 5 working days of `resolved`, `system` completes `confirm_recovery` with
`recovered: true`; when nobody answers the survey within 5 further working days, the
incident closes without one. In the engine a boundary timer cancels the user task and a
script task stands in for the answer (`elements`); here the cancelled confirmation is
recorded as the system's completion, and the closure says that no survey was answered.

Suspended time does not count: when an answer timer comes due, the worker first moves it
past the time the incident spent suspended since the task became ready (`postpone_for`);
while the incident is still suspended it looks again every SUSPENSION_RECHECK.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.sla import WorkCalendar
from engine.domain.working_days import Suspension, due_after_suspensions
from engine.persistence.models import Event, Incident, UserTaskRow
from engine.services.incidents.elements import (
    ANSWER_WORKING_DAYS,
    CONFIRM_RECOVERY_TASK,
    CONFIRM_RECOVERY_TIMEOUT,
    NO_SURVEY,
    RECORD_FEEDBACK_TASK,
    RECORD_FEEDBACK_TIMEOUT,
    RECOVERY_ASSUMED_ELEMENT,
    RECOVERY_ASSUMED_VALUES,
    SURVEY_SKIPPED_ELEMENT,
)
from engine.services.incidents.event_log import EventLog
from engine.services.sla.clocks import RESOLUTION
from engine.services.sla.snapshot import clock_specs
from engine.workflow.runtime import Postpone

# Answer timer (boundary event) -> the user task it waits on.
TIMED_TASKS = {
    CONFIRM_RECOVERY_TIMEOUT: CONFIRM_RECOVERY_TASK,
    RECORD_FEEDBACK_TIMEOUT: RECORD_FEEDBACK_TASK,
}
SUSPENSION_RECHECK = timedelta(hours=1)


def resolution_calendar(incident: Incident) -> WorkCalendar:
    """The calendar answer timers count working days in: the resolution clock's, from
    the incident's policy snapshot (ValueError while it has no priority with a policy)."""
    snapshot = incident.policy_snapshot
    priority = incident.priority
    if priority is None or str(priority) not in snapshot.get("sla", {}):
        raise ValueError("the incident has no priority with an SLA policy yet")
    return clock_specs(snapshot, priority)[RESOLUTION].calendar


def postpone_for(session: Session, incident: Incident, now: datetime) -> Postpone | None:
    """How the worker moves the incident's answer timers past its suspensions (None when
    there is nothing to move)."""
    starts = {
        row.name: row.created_at
        for row in session.scalars(
            select(UserTaskRow).where(
                UserTaskRow.incident_id == incident.id,
                UserTaskRow.name.in_(TIMED_TASKS.values()),
                UserTaskRow.state == "ready",
            )
        )
    }
    if not starts:
        return None
    suspensions = _suspensions(session, incident.id, min(starts.values()))
    if not suspensions:
        return None
    try:
        calendar = resolution_calendar(incident)
    except ValueError:
        return None

    def postpone(element_id: str, due: datetime) -> datetime:
        start = starts.get(TIMED_TASKS.get(element_id, ""))
        if start is None:
            return due
        mine = [(began, ended) for began, ended in suspensions if ended is None or ended > start]
        if not mine:
            return due
        # Counted from the task's start every time (a moved timer no longer says its n).
        moved = due_after_suspensions(calendar, start, ANSWER_WORKING_DAYS, mine)
        if moved is None:  # still suspended: not before it resumes
            return max(due, now + SUSPENSION_RECHECK)
        return max(due, moved)

    return postpone


def _suspensions(session: Session, incident_id: int, since: datetime) -> list[Suspension]:
    rows = session.execute(
        select(Event.type, Event.at)
        .where(Event.incident_id == incident_id, Event.type.in_(("suspended", "resumed")))
        .order_by(Event.id)
    ).all()
    spans: list[Suspension] = []
    began: datetime | None = None
    for kind, at in rows:
        if kind == "suspended" and began is None:
            began = at
        elif kind == "resumed" and began is not None:
            if at > since:
                spans.append((began, at))
            began = None
    if began is not None:
        spans.append((began, None))
    return spans


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
