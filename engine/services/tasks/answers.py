"""The caller's own answers: confirming the recovery (3.2) and the survey (3.3).

Contract Part 2, "The reporter's own answers": the caller (signed in, or through a
signed link) answers `confirm_recovery` and `record_feedback` while they are ready,
completing them as the actor, even when a desk agent has claimed them (the desk
can still complete both from the task page after a phone call). After a closure
without a survey (the bundled diagram's timer), a survey is still accepted once
within 30 days: it is stored as `survey_answered` and does not reopen anything.

These use cases live in the tasks area, beside the completion they reuse
(`complete_as`), because the incidents area may not import the tasks area.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from engine.domain.forms import FormValidationError, validate_submission
from engine.persistence.models import Incident, Note, UserTaskRow
from engine.services.context import ServiceContext
from engine.services.errors import Conflict, Invalid
from engine.services.incidents.audience import Audience, shown_detail
from engine.services.incidents.caller_links import CallerRef, the_caller
from engine.services.incidents.elements import CONFIRM_RECOVERY_TASK, RECORD_FEEDBACK_TASK
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.views import incident_detail
from engine.services.process.definitions import spec_source
from engine.services.tasks.commands import Completer, complete_as
from engine.workflow.definitions import UserTaskSpec
from engine.workflow.runtime import TaskNotFound

LATE_SURVEY_WINDOW = timedelta(days=30)
COMMENT_LIMIT = 20_000
SURVEY_ANSWERED = "survey_answered"
CONFIRMATION_FIELDS = ("recovered", "comment")


def answer_confirmation(
    ctx: ServiceContext, caller: CallerRef, incident_id: int, payload: Any
) -> dict[str, Any]:
    """`{recovered, comment?}` completes the ready `confirm_recovery` as the caller;
    `recovered: false` reopens the incident (the process's branch); the comment
    becomes a note by the caller, in the same transaction."""
    task_id, name = _ready_task(ctx, caller, incident_id, CONFIRM_RECOVERY_TASK)
    recovered, comment = _confirmation_values(payload)

    def also(session: Session, incident: Incident, log: EventLog, now: datetime) -> None:
        session.add(
            Note(incident_id=incident.id, author=name, at=now, text=comment, internal=False)
        )
        incident.updated_at = now
        log.add("note_added", name, now, internal=False)

    completer = _caller_completer(
        ctx, caller, incident_id, CONFIRM_RECOVERY_TASK, name, also if comment else None
    )
    return complete_as(ctx, completer, task_id, {"recovered": recovered})


def answer_survey(
    ctx: ServiceContext, caller: CallerRef, incident_id: int, payload: Any
) -> dict[str, Any]:
    """`{satisfaction, feedback?}`, checked against `record_feedback`'s own form (a
    designer's options are respected): completes the ready task (which closes the
    incident), or, after a closure without a survey, stores a late answer once."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    with ctx.db.read() as session:
        incident, name, _audience = the_caller(session, caller, incident_id, ctx.now())
        task_id = _ready_id(session, incident.id, RECORD_FEEDBACK_TASK)
    if task_id is not None:
        completer = _caller_completer(ctx, caller, incident_id, RECORD_FEEDBACK_TASK, name)
        return complete_as(ctx, completer, task_id, payload)
    return _late_survey(ctx, caller, incident_id, payload)


def open_answers(ctx: ServiceContext, caller: CallerRef, incident_id: int) -> dict[str, Any]:
    """What the caller may answer now: `confirm` (bool), and `survey` (None, or the
    satisfaction field's options and whether it is the late survey). For pages."""
    with ctx.db.read() as session:
        now = ctx.now()
        incident, _name, _audience = the_caller(session, caller, incident_id, now)
        confirm = _ready_id(session, incident.id, CONFIRM_RECOVERY_TASK) is not None
        survey_ready = _ready_id(session, incident.id, RECORD_FEEDBACK_TASK) is not None
        late = not survey_ready and _late_survey_open(session, incident, now)
        survey = None
        if survey_ready or late:
            spec = _survey_spec(ctx, incident)
            survey = {"late": late, "fields": list(spec.form.fields) if spec else []}
        return {"confirm": confirm, "survey": survey}


# -- the pieces ---------------------------------------------------------------


def _confirmation_values(payload: Any) -> tuple[bool, str]:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {}
    recovered = payload.get("recovered")
    if not isinstance(recovered, bool):
        errors["recovered"] = "is required: true or false"
    comment = payload.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        errors["comment"] = "must be a string"
    elif len(comment) > COMMENT_LIMIT:
        errors["comment"] = f"must be at most {COMMENT_LIMIT} characters"
    for key in payload:
        if key not in CONFIRMATION_FIELDS:
            errors[str(key)] = "is not a field of a confirmation"
    if errors:
        raise Invalid("invalid confirmation", errors)
    return bool(recovered), str(comment).strip()


def _ready_id(session: Session, incident_id: int, name: str) -> str | None:
    return session.scalar(
        select(UserTaskRow.id).where(
            UserTaskRow.incident_id == incident_id,
            UserTaskRow.name == name,
            UserTaskRow.state == "ready",
        )
    )


def _ready_task(
    ctx: ServiceContext, caller: CallerRef, incident_id: int, task_name: str
) -> tuple[str, str]:
    """The ready task's id and the caller's name; 409 naming the state when not ready."""
    with ctx.db.read() as session:
        incident, name, _audience = the_caller(session, caller, incident_id, ctx.now())
        task_id = _ready_id(session, incident.id, task_name)
        if task_id is None:
            raise Conflict(
                f"{task_name} is not ready (the incident is {incident.status})",
                {"status": incident.status},
            )
        return task_id, name


def _caller_completer(
    ctx: ServiceContext,
    caller: CallerRef,
    incident_id: int,
    task_name: str,
    name: str,
    also: Callable[[Session, Incident, EventLog, datetime], None] | None = None,
) -> Completer:
    """The caller completing their own task: no lane, no claim; the caller check (and a
    link session's version) is made again on every load, the locked one included."""

    def load(session: Session, task_id: str, for_update: bool) -> tuple[UserTaskRow, Incident]:
        query = (
            select(UserTaskRow)
            .join(Incident, Incident.id == UserTaskRow.incident_id)
            .where(
                UserTaskRow.id == task_id,
                UserTaskRow.incident_id == incident_id,
                UserTaskRow.name == task_name,
            )
        )
        if for_update:
            # Both rows in one statement, as a lane member's completion locks them: the
            # same order everywhere, so two completions never wait on each other.
            query = query.with_for_update(of=[UserTaskRow, Incident])
        row = session.scalar(query)
        # The caller check reads the incident just locked (a revoke that committed first
        # is seen).
        incident, _name, _audience = the_caller(session, caller, incident_id, ctx.now())
        if row is None or row.state != "ready":
            raise Conflict(f"{task_name} is no longer ready (the incident is {incident.status})")
        return row, incident

    return Completer(name, load, lambda incident: Audience("caller", name), also)


def _survey_spec(ctx: ServiceContext, incident: Incident) -> UserTaskSpec | None:
    try:
        return ctx.runtime.user_task(spec_source(incident.definition), RECORD_FEEDBACK_TASK)
    except TaskNotFound:
        return None  # a designer's version without the survey task


def _late_survey_open(session: Session, incident: Incident, now: datetime) -> bool:
    """Closed after a resolution, within 30 days, without `record_feedback` completed
    (the timer closed it) and no late answer yet."""
    if incident.status != "closed" or incident.closed_at is None or incident.resolved_at is None:
        return False
    if incident.survey_answered_at is not None or now > incident.closed_at + LATE_SURVEY_WINDOW:
        return False
    answered = session.scalar(
        select(
            exists().where(
                UserTaskRow.incident_id == incident.id,
                UserTaskRow.name == RECORD_FEEDBACK_TASK,
                UserTaskRow.state == "completed",
            )
        )
    )
    return not answered


def _late_survey(
    ctx: ServiceContext, caller: CallerRef, incident_id: int, payload: dict[str, Any]
) -> dict[str, Any]:
    with ctx.db.write() as session:
        now = ctx.now()
        incident, name, audience = the_caller(session, caller, incident_id, now, for_update=True)
        if not _late_survey_open(session, incident, now):
            if incident.survey_answered_at is not None:
                raise Conflict("the survey was already answered", {"status": incident.status})
            raise Conflict(
                f"no survey is open: record_feedback is not ready (the incident is "
                f"{incident.status})",
                {"status": incident.status},
            )
        spec = _survey_spec(ctx, incident)
        if spec is None:
            raise Conflict("this incident's process has no survey", {"status": incident.status})
        try:
            values = validate_submission(spec.form, payload)
        except FormValidationError as exc:
            raise Invalid("invalid survey", exc.errors) from exc
        incident.survey_answered_at = now
        incident.updated_at = now
        EventLog(session, incident).add(
            SURVEY_ANSWERED,
            name,
            now,
            satisfaction=values.get("satisfaction"),
            feedback=values.get("feedback"),
        )
        session.flush()
        detail = incident_detail(session, incident, now, include_events=False)
        return shown_detail(session, audience, detail)
