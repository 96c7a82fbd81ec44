"""What a process step means for the incident record.

The engine reports where the instance now waits and which elements it passed;
this module turns that into status, phase, events, open tasks, linked records
and SLA columns.  The element ids it reacts to are fixed by the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.priority import to_level, to_priority
from engine.domain.script_helpers import MAX_WORKING_DAYS, bind_helpers
from engine.domain.working_days import working_day_ends
from engine.persistence.models import Incident, InstanceState, LinkedRecord, User, UserTaskRow
from engine.services.context import ServiceContext
from engine.services.errors import Invalid
from engine.services.incidents.answer_timers import (
    closed_event_data,
    complete_unanswered,
    resolution_calendar,
)
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.vendors import VENDOR_LANE, organisation_for_vendor_task
from engine.services.process.definitions import spec_source
from engine.services.sla.clocks import (
    RESOLUTION,
    RESPONSE,
    STAGE_ENTERED,
    STAGE_LEFT,
    STAGES,
    ClockSpec,
)
from engine.services.sla.snapshot import clock_specs, matrix_of, targets_of
from engine.services.sla.thresholds import current_specs, schedule
from engine.workflow.runtime import ProcessStepFailed, ReadyTask, SpecSource, StepOutcome

StepResult = TypeVar("StepResult", StepOutcome, StepOutcome | None)

RESOLVED_EVENT_ELEMENT = "incident_resolved"
REOPENED_EVENT_ELEMENT = "incident_reopened"
MANAGEMENT_LANE = "incident_manager"
# Technical escalation hands an incident to a more skilled tier (seed term 6);
# handing a vendor's solution back down is not one.
# What `incidents.category` holds (a script may set the category to anything).
CATEGORY_LIMIT: int = getattr(Incident.__table__.c.category.type, "length", None) or 40
TIER = {"service_desk": 0, "level2": 1, "level3": 2, "vendor": 3}
PHASE_ORDER = {"identify": 0, "investigate": 1, "resolve": 2}

# Form field → kind of linked record it raises (contract).
LINK_FIELDS = {
    "change_required": "change",
    "service_request_required": "service_request",
    "create_service_request": "service_request",
    "create_problem": "problem",
    "create_knowledge_article": "knowledge_article",
}
LINK_PREFIX = {
    "change": "CHG",
    "service_request": "SR",
    "problem": "PRB",
    "knowledge_article": "KB",
}


def helpers_for(ctx: ServiceContext, incident: Incident, log: EventLog) -> dict[str, Any]:
    snapshot = incident.policy_snapshot
    now = ctx.now()

    @cache
    def resolution_working_days() -> Sequence[datetime]:
        # Working days count in the incident's resolution calendar (contract Part 2).
        return working_day_ends(resolution_calendar(incident), now, MAX_WORKING_DAYS)

    return bind_helpers(
        matrix_of(snapshot),
        targets_of(snapshot),
        lambda priority: due_times(log, clock_specs(snapshot, priority), ctx.now()),
        resolution_working_days,
    )


def run_step(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    log: EventLog,
    step: Callable[[SpecSource, dict[str, Any]], StepResult],
) -> StepResult:
    """Run one engine step on the incident's definition; map failures to 422."""
    definition = incident.definition
    try:
        return step(spec_source(definition), helpers_for(ctx, incident, log))
    except ProcessStepFailed as exc:
        raise Invalid(
            f"the process failed at {exc.element or 'an element'}: {exc}",
            [{"element": exc.element, "line": None, "message": str(exc)}],
        ) from exc


# An engine step whose incident moved meanwhile runs again once on the fresh state.
STEP_ATTEMPTS = 2


class IncidentMoved(Exception):
    """The incident's row version moved between an engine step and its write."""


StepFor = Callable[[str], Callable[[SpecSource, dict[str, Any]], StepResult]]
KeepOutcome = Callable[[Session, Incident, EventLog, Any], int]


def step_outside_lock(
    ctx: ServiceContext,
    incident_id: int,
    step_for: StepFor,
    keep: KeepOutcome,
    *,
    wanted: Callable[[Incident], bool],
) -> int:
    """Run an engine step on a read transaction, then `keep` its outcome in a short
    write that first checks the incident's row version has not moved (else the
    step runs again). `step_for(state_json)` makes the step; the outcome is None
    when the incident has no running process. Returns what `keep` returns."""
    for _attempt in range(STEP_ATTEMPTS):
        outcome: Any = None
        with ctx.db.read() as session, session.no_autoflush:
            incident = session.get(Incident, incident_id)
            if incident is None or not wanted(incident):
                return 0
            seen_version = incident.row_version
            state = session.get(InstanceState, incident_id)
            if state is not None:
                events = EventLog(session, incident)
                outcome = run_step(ctx, session, incident, events, step_for(state.state_json))
        try:
            with ctx.db.write() as session:
                incident = session.get(Incident, incident_id, with_for_update={"of": Incident})
                if incident is None or not wanted(incident):
                    return 0
                if incident.row_version != seen_version:
                    raise IncidentMoved  # rolls this write back
                return keep(session, incident, EventLog(session, incident), outcome)
        except IncidentMoved:
            continue
    raise IncidentMoved(f"incident {incident_id} kept changing while its step ran")


def apply_outcome(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    log: EventLog,
    outcome: StepOutcome,
    actor: str,
    completed: UserTaskRow | None = None,
    values: dict[str, Any] | None = None,
) -> list[UserTaskRow]:
    """Record what the step did; return the incident's ready tasks."""
    now = ctx.now()
    values = values or {}
    old_priority = incident.priority
    _copy_classification(incident, outcome.data)
    if completed is not None and completed.name == "record_incident" and incident.status == "new":
        incident.status = "in_progress"
    if RESOLVED_EVENT_ELEMENT in outcome.passed:
        incident.status = "resolved"
        incident.resolved_at = now
        log.add("resolved", actor, now, task=completed.name if completed else None)
    if REOPENED_EVENT_ELEMENT in outcome.passed:
        incident.status = "in_progress"
        incident.resolved_at = None
        log.add("reopened", actor, now)
    if completed is not None:
        _create_linked_records(session, incident, log, completed, values, actor, now)
    complete_unanswered(session, incident, log, outcome.passed, actor, now)
    ready_rows = _sync_tasks(session, incident, log, outcome.ready, actor, now, completed, values)
    _update_phase(incident, outcome.ready)
    _update_stage(incident, log, ready_rows, actor, now)
    if outcome.finished:
        if outcome.reached_end:
            incident.status = "closed"
            incident.phase = "closed"
            incident.closed_at = now
            log.add("closed", actor, now, **closed_event_data(outcome.passed))
        else:
            incident.error = "the process reported completion without reaching an end event"
            log.add("error", "system", now, message=incident.error)
    if log.clock_changed or incident.priority != old_priority:
        refresh_sla(ctx, incident, log)
    incident.next_timer_at = outcome.next_timer_at
    incident.updated_at = now
    _save_state(session, incident, outcome.state)
    return ready_rows


def refresh_sla(ctx: ServiceContext, incident: Incident, log: EventLog) -> None:
    """Recompute the due-time columns and the next SLA check from the event log
    (the arithmetic lives in the domain, once)."""
    now = ctx.now()
    specs = current_specs(incident)
    states = log.clock_states(specs, now)
    incident.response_due = states[RESPONSE].due_at
    incident.resolution_due = states[RESOLUTION].due_at
    if incident.priority is not None and (states[RESPONSE].breached or states[RESOLUTION].breached):
        incident.breached = True
    schedule(log.session, incident, states, now, specs=specs)


def due_times(log: EventLog, specs: dict[str, ClockSpec], now: datetime) -> dict[str, Any]:
    states = log.clock_states({name: specs[name] for name in (RESPONSE, RESOLUTION)}, now)
    return {"response_due": states[RESPONSE].due_at, "resolution_due": states[RESOLUTION].due_at}


def _update_stage(
    incident: Incident, log: EventLog, ready: list[UserTaskRow], actor: str, now: datetime
) -> None:
    """Record which tier(s) now hold the incident; each change starts or stops a stage clock.

    No tier holds a resolved or closed incident: confirming recovery with the
    reporter is not time the tiers are working on it.
    """
    lanes = {row.lane for row in ready}
    held = (
        [stage for stage in STAGES if stage in lanes]
        if incident.status not in ("resolved", "closed")
        else []
    )
    before = incident.stage.split(",") if incident.stage else []
    for stage in before:
        if stage not in held:
            log.add(STAGE_LEFT, actor, now, stage=stage)
    for stage in held:
        if stage not in before:
            log.add(STAGE_ENTERED, actor, now, stage=stage)
    incident.stage = ",".join(held) or None


def _copy_classification(incident: Incident, data: dict[str, Any]) -> None:
    """The classification the process's data holds; a script may have set any value,
    so each is checked against what the incident's columns hold (else 422)."""
    try:
        if "category" in data and data["category"] is not None:
            category = str(data["category"])
            if len(category) > CATEGORY_LIMIT:
                raise ValueError(f"category must be at most {CATEGORY_LIMIT} characters")
            incident.category = category
        for name in ("impact", "urgency"):
            if data.get(name) is not None:
                setattr(incident, name, to_level(data[name], name))
        if data.get("priority") is not None:
            incident.priority = to_priority(data["priority"])
        if "major" in data:
            incident.major = bool(data["major"])
    except ValueError as exc:
        raise Invalid(
            f"the process set an invalid classification: {exc}",
            [{"element": None, "line": None, "message": str(exc)}],
        ) from exc


def _sync_tasks(
    session: Session,
    incident: Incident,
    log: EventLog,
    ready: list[ReadyTask],
    actor: str,
    now: datetime,
    completed: UserTaskRow | None,
    values: dict[str, Any],
) -> list[UserTaskRow]:
    open_rows = {
        row.id: row
        for row in session.scalars(
            select(UserTaskRow).where(
                UserTaskRow.incident_id == incident.id, UserTaskRow.state == "ready"
            )
        )
        if row.state == "ready"  # not one closed in this session but not yet flushed
    }
    ready_ids = {t.id for t in ready}
    for row in open_rows.values():
        if row.id not in ready_ids and (completed is None or row.id != completed.id):
            row.state = "cancelled"
            row.closed_at = now
            row.closed_by = actor
            log.add("cancelled", actor, now, task=row.name, task_id=row.id)
    ready_rows = []
    for task in ready:
        if task.id in open_rows:
            row = open_rows[task.id]
            if row.label != task.label:  # renamed in a version the incident moved to
                row.label = task.label
            ready_rows.append(row)
            continue
        row = UserTaskRow(
            id=task.id,
            incident_id=incident.id,
            name=task.element_id,
            label=task.label,
            lane=task.lane or "",
            state="ready",
            created_at=now,
        )
        if task.lane == VENDOR_LANE:
            row.vendor_org = organisation_for_vendor_task(session, incident.id, completed, values)
        session.add(row)
        ready_rows.append(row)
        if task.lane == MANAGEMENT_LANE:
            log.add("management_escalation", actor, now, task=task.element_id, task_id=task.id)
        if _is_technical_escalation(completed, task):
            to_vendor = {"vendor_org": row.vendor_org} if task.lane == VENDOR_LANE else {}
            log.add(
                "technical_escalation",
                actor,
                now,
                task=task.element_id,
                task_id=task.id,
                to=task.lane,
                **to_vendor,
            )
        _assign_on_reassign(session, log, row, completed, values, actor, now)
    return ready_rows


def _is_technical_escalation(completed: UserTaskRow | None, task: ReadyTask) -> bool:
    if task.lane not in TIER or TIER[task.lane] == 0:
        return False
    from_tier = TIER.get(completed.lane, 0) if completed is not None else 0
    return TIER[task.lane] > from_tier


def _assign_on_reassign(
    session: Session,
    log: EventLog,
    row: UserTaskRow,
    completed: UserTaskRow | None,
    values: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    target = values.get("reassign_to")
    if completed is None or not target or row.name != completed.name:
        return
    user = session.scalar(select(User).where(User.username == target))
    if user is not None:
        row.claimed_by = user.id
        log.add(
            "assigned",
            actor,
            now,
            task=row.name,
            task_id=row.id,
            assignee=target,
            reason=values.get("reassign_reason"),
        )


def _update_phase(incident: Incident, ready: list[ReadyTask]) -> None:
    phases = [t.phase for t in ready if t.phase in PHASE_ORDER]
    if phases:
        incident.phase = max(phases, key=lambda p: PHASE_ORDER[p])


def _create_linked_records(
    session: Session,
    incident: Incident,
    log: EventLog,
    completed: UserTaskRow,
    values: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    kinds = []
    for field_id, kind in LINK_FIELDS.items():
        if values.get(field_id) is True and kind not in kinds:
            kinds.append(kind)
    for kind in kinds:
        record = LinkedRecord(
            incident_id=incident.id,
            kind=kind,
            title=f"{incident.number}: {incident.title}"[:300],
            status="open",
            creator=actor,
            created_at=now,
        )
        session.add(record)
        session.flush()
        record.number = f"{LINK_PREFIX[kind]}-{record.id:06d}"
        log.add(
            "linked_record_created",
            actor,
            now,
            task=completed.name,
            kind=kind,
            number=record.number,
        )


def _save_state(session: Session, incident: Incident, state: str) -> None:
    row = session.get(InstanceState, incident.id)
    if row is None:
        session.add(InstanceState(incident_id=incident.id, state_json=state))
    else:
        row.state_json = state
