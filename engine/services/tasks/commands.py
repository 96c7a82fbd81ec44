"""User-task use cases: inbox, form, complete, claim, release, assign."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from engine.domain.forms import FieldSpec, FormValidationError, default_value, validate_submission
from engine.persistence.models import Incident, InstanceState, User, UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.services.incidents.audience import (
    Audience,
    audience_of,
    names_for,
    shown_detail,
    shown_task,
)
from engine.services.incidents.commands import resume_if_suspended
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import (
    STEP_ATTEMPTS,
    IncidentMoved,
    apply_outcome,
    run_step,
)
from engine.services.incidents.vendors import check_completion as check_vendor_escalation
from engine.services.incidents.views import incident_detail, task_summary
from engine.services.incidents.visibility import can_see, task_conditions, vendor_task_condition
from engine.services.process.definitions import spec_source
from engine.services.telemetry import metrics
from engine.workflow.definitions import UserTaskSpec
from engine.workflow.runtime import StepOutcome, TaskNotFound, TaskNotReady

REASSIGN_TASK = "level2_investigation"


def ready_in_my_lanes(actor: Actor) -> list[ColumnElement[bool]]:
    """Ready tasks of the actor's lanes on incidents the actor may see."""
    conditions = [UserTaskRow.state == "ready", UserTaskRow.lane.in_(sorted(actor.roles))]
    return [*conditions, *task_conditions(actor)]


def count_ready_by_lane(ctx: ServiceContext, actor: Actor) -> dict[str, int]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(UserTaskRow.lane, func.count(UserTaskRow.id))
            .join(Incident, Incident.id == UserTaskRow.incident_id)
            .where(*ready_in_my_lanes(actor))
            .group_by(UserTaskRow.lane)
        )
        return {lane: int(count) for lane, count in rows}


def get_task(ctx: ServiceContext, actor: Actor, task_id: str) -> dict[str, Any]:
    with ctx.db.read() as session:
        row, incident = _load_for_lane(session, actor, task_id)
        spec = _task_spec(ctx, incident, row.name)
        summary = task_summary(row, incident)
        result = shown_task(summary, names_for(session, audience_of(actor), tasks=[summary]))
        result.update(
            {
                "state": row.state,
                "documentation": spec.documentation,
                "phase": spec.phase,
                "form": {"fields": [field_view(f) for f in spec.form.fields]},
            }
        )
        return result


def field_view(field: FieldSpec) -> dict[str, Any]:
    return {
        "id": field.id,
        "label": field.label,
        "type": field.type,
        "required": field.required,
        "required_if": field.required_if,
        "readonly": field.readonly,
        "multiline": field.multiline,
        "options": [{"id": o.id, "name": o.name} for o in field.options],
        "default": default_value(field),
        "constraints": {
            k: v
            for k, v in (
                ("minlength", field.minlength),
                ("maxlength", field.maxlength),
                ("min", field.min),
                ("max", field.max),
            )
            if v is not None
        },
    }


@dataclass(frozen=True)
class Completer:
    """Who completes a task: the name the events carry, how the task is loaded and
    checked for them (`load(session, task_id, for_update)`: raises NotFound, Forbidden
    or Conflict), whose view of the incident the answer is, and what else is written
    in the completion's transactions (`also(session, incident, log, now)`, after the
    `task_completed` event; in the read phase too, where it is rolled back)."""

    name: str
    load: Callable[[Session, str, bool], tuple[UserTaskRow, Incident]]
    audience: Callable[[Incident], Audience]
    also: Callable[[Session, Incident, EventLog, datetime], None] | None = None


def lane_member(actor: Actor) -> Completer:
    """A member of the task's lane: the lane, visibility and claim rules apply."""

    def load(session: Session, task_id: str, for_update: bool) -> tuple[UserTaskRow, Incident]:
        row, incident = _load_for_lane(session, actor, task_id, for_update=for_update)
        _check_ready_and_claim(row, actor)
        return row, incident

    return Completer(actor.username, load, lambda incident: audience_of(actor, incident))


def complete_task(
    ctx: ServiceContext, actor: Actor, task_id: str, payload: Any, *, from_text: bool = False
) -> dict[str, Any]:
    """Complete a ready task and run the engine to the next wait state."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object of form values", {})
    return complete_as(ctx, lane_member(actor), task_id, payload, from_text=from_text)


def complete_as(
    ctx: ServiceContext,
    completer: Completer,
    task_id: str,
    payload: dict[str, Any],
    *,
    from_text: bool = False,
) -> dict[str, Any]:
    """Complete a ready task for `completer` (a lane member, or a caller answering).

    The engine step (scripts included) runs in a read transaction, holding no
    write lock; the write then re-reads the incident and applies the outcome
    only if its row version has not moved meanwhile (else the step runs once
    more on the fresh state, then 409)."""
    for _attempt in range(STEP_ATTEMPTS):
        now = ctx.now()
        outcome, seen_version = _step_without_lock(ctx, completer, task_id, payload, from_text, now)
        try:
            with ctx.db.write() as session, session.no_autoflush:
                # One flush at the end: every row this step writes goes out together.
                row, incident, values, log = _prepare_completion(
                    ctx, session, completer, task_id, payload, from_text, now, for_update=True
                )
                if incident.row_version != seen_version:
                    raise IncidentMoved  # rolls this write back; the step runs again
                metrics.count_task_completion(session, row.lane)  # at commit
                ready = apply_outcome(
                    ctx, session, incident, log, outcome, completer.name, row, values
                )
                session.flush()
                detail = incident_detail(
                    session, incident, now, include_events=False, ready_tasks=ready
                )
                return shown_detail(session, completer.audience(incident), detail)
        except IncidentMoved:
            continue
    raise Conflict("the incident changed while the step ran; reload and retry")


def _step_without_lock(
    ctx: ServiceContext,
    completer: Completer,
    task_id: str,
    payload: dict[str, Any],
    from_text: bool,
    now: datetime,
) -> tuple[StepOutcome, int]:
    """The engine step on a read transaction: its outcome and the row version it saw."""
    with ctx.db.read() as session, session.no_autoflush:
        row, incident, values, log = _prepare_completion(
            ctx, session, completer, task_id, payload, from_text, now
        )
        state = session.get(InstanceState, incident.id)
        if state is None:
            raise Conflict("the incident has no running process")
        try:
            outcome = run_step(
                ctx,
                session,
                incident,
                log,
                lambda source, helpers: ctx.runtime.complete(
                    source, state.state_json, row.id, values, helpers
                ),
            )
        except (TaskNotFound, TaskNotReady) as exc:
            # The table and the engine disagree: treat as already done elsewhere.
            raise Conflict(f"task {task_id} is no longer ready") from exc
        return outcome, incident.row_version


def _prepare_completion(
    ctx: ServiceContext,
    session: Session,
    completer: Completer,
    task_id: str,
    payload: dict[str, Any],
    from_text: bool,
    now: datetime,
    *,
    for_update: bool = False,
) -> tuple[UserTaskRow, Incident, dict[str, Any], EventLog]:
    """Check the completion and record what precedes the engine step (the same in the
    read phase, where the step runs, and in the write that keeps its outcome)."""
    row, incident = completer.load(session, task_id, for_update)
    spec = _task_spec(ctx, incident, row.name)
    try:
        values = validate_submission(spec.form, payload, from_text=from_text)
    except FormValidationError as exc:
        raise Invalid("invalid form values", exc.errors) from exc
    _check_reassign_target(session, row, values)
    check_vendor_escalation(session, row.name, values)
    log = EventLog(session, incident)
    resume_if_suspended(ctx, incident, log, completer.name, now)
    log.add("task_completed", completer.name, now, task=row.name, task_id=row.id, values=values)
    if completer.also is not None:
        completer.also(session, incident, log, now)
    row.state = "completed"
    row.closed_at = now
    row.closed_by = completer.name
    return row, incident, values, log


def claim(ctx: ServiceContext, actor: Actor, task_id: str) -> dict[str, Any]:
    with ctx.db.write() as session:
        row, incident = _load_for_lane(session, actor, task_id, for_update=True)
        _check_ready_and_claim(row, actor)
        if row.claimed_by != actor.id:
            row.claimed_by = actor.id
            row.claimant = session.get(User, actor.id)
            EventLog(session, incident).add(
                "claimed", actor.username, ctx.now(), task=row.name, task_id=row.id
            )
        session.flush()
        return task_summary(row, incident)


def release(ctx: ServiceContext, actor: Actor, task_id: str) -> dict[str, Any]:
    with ctx.db.write() as session:
        row, incident = _load_for_lane(session, actor, task_id, for_update=True)
        _check_ready_and_claim(row, actor)
        if row.claimed_by is not None:
            row.claimed_by = None
            row.claimant = None
            EventLog(session, incident).add(
                "released", actor.username, ctx.now(), task=row.name, task_id=row.id
            )
        session.flush()
        return task_summary(row, incident)


def assign(ctx: ServiceContext, actor: Actor, task_id: str, payload: Any) -> dict[str, Any]:
    username = payload.get("username") if isinstance(payload, dict) else None
    if not isinstance(username, str) or not username:
        raise Invalid("invalid assignment", {"username": "is required"})
    with ctx.db.write() as session:
        row, incident = _load_for_lane(session, actor, task_id, for_update=True)
        _check_ready_and_claim(row, actor)
        assignee = session.scalar(select(User).where(User.username == username))
        if assignee is None or not assignee.active or row.lane not in assignee.role_names:
            raise Invalid(
                "invalid assignment",
                {"username": f"must be an active user of the {row.lane} lane"},
            )
        row.claimed_by = assignee.id
        row.claimant = assignee
        EventLog(session, incident).add(
            "assigned",
            actor.username,
            ctx.now(),
            task=row.name,
            task_id=row.id,
            assignee=username,
        )
        session.flush()
        return task_summary(row, incident)


def _load_for_lane(
    session: Session, actor: Actor, task_id: str, *, for_update: bool = False
) -> tuple[UserTaskRow, Incident]:
    # The instance state comes along (outer join) so completing needs no extra read.
    query = (
        select(UserTaskRow, Incident, InstanceState)
        .join(Incident, Incident.id == UserTaskRow.incident_id)
        .outerjoin(InstanceState, InstanceState.incident_id == Incident.id)
        .where(UserTaskRow.id == task_id)
    )
    vendor_task = vendor_task_condition(actor)
    if vendor_task is not None:
        # Another organisation's vendor task is, to this vendor, no task at all.
        query = query.where(vendor_task)
    if for_update:
        # Both rows: a racing completion that committed while we waited is seen.
        query = query.with_for_update(of=[UserTaskRow, Incident])
    found = session.execute(query).first()
    if found is None:
        raise NotFound(f"task {task_id} not found")
    row, incident, _state = found
    if not can_see(session, actor, incident):
        # A lane member who may not see the incident learns nothing of it.
        raise NotFound(f"task {task_id} not found")
    if row.lane not in actor.roles:
        raise Forbidden(f"task {task_id} belongs to the {row.lane} lane")
    return row, incident


def _check_ready_and_claim(row: UserTaskRow, actor: Actor) -> None:
    if row.state != "ready":
        raise Conflict(f"task {row.id} is already {row.state}")
    if holds_claim(row) and row.claimed_by != actor.id:
        claimant = row.claimant.username if row.claimant else "someone else"
        raise Conflict(f"task {row.id} is claimed by {claimant}")


def holds_claim(row: UserTaskRow) -> bool:
    """A claim binds only while its holder is active: a deactivated claimant's task
    is free again for the lane (else nobody could ever complete it)."""
    return row.claimed_by is not None and row.claimant is not None and row.claimant.active


def _check_reassign_target(session: Session, row: UserTaskRow, values: dict[str, Any]) -> None:
    target = values.get("reassign_to")
    if row.name != REASSIGN_TASK or not target:
        return
    user = session.scalar(select(User).where(User.username == target))
    if user is None or not user.active or row.lane not in user.role_names:
        raise Invalid(
            "invalid form values",
            {"reassign_to": f"must be an active user of the {row.lane} lane"},
        )


def _task_spec(ctx: ServiceContext, incident: Incident, element_id: str) -> UserTaskSpec:
    definition = incident.definition
    return ctx.runtime.user_task(spec_source(definition), element_id)
