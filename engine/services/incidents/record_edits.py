"""Correcting an incident's record (PATCH): its classification (impact, urgency,
category, recomputing priority and due times) and its text (title, description,
contact, each change an event `field_changed` {field, old, new}).

A change after which the incident is priority 1-2 or major, when it was neither
before, starts the management review (contract Part 2): the app sends the BPMN
signal `management_escalation` unless a `manager_review` task is already ready.
The signal is an engine step: it runs after the change's write, on a read, and its
outcome is kept in a second short write that re-checks the row version
(progress.step_outside_lock), as the SLA worker's escalation signal is.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from engine.domain.forms import FormSpec, FormValidationError, validate_submission
from engine.domain.priority import is_major, priority_for
from engine.domain.roles import HANDLER_ROLES
from engine.persistence.models import Incident, InstanceState, UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid
from engine.services.incidents.elements import MANAGEMENT_ESCALATION_SIGNAL, MANAGER_REVIEW_TASK
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import (
    MANAGEMENT_LANE,
    IncidentMoved,
    apply_outcome,
    refresh_sla,
    step_outside_lock,
)
from engine.services.incidents.views import incident_detail
from engine.services.incidents.visibility import load_visible
from engine.services.process.definitions import spec_source
from engine.services.sla.snapshot import matrix_of

CLASSIFY_TASK = "record_incident"
CLASSIFICATION_FIELDS = ("impact", "urgency", "category")
TEXT_FIELDS = {"title": 300, "description": 20_000, "contact": 300}
ESCALATING_PRIORITY = 2  # priority 1 or 2 (or a major incident) needs the manager
logger = logging.getLogger("itsm.incidents")


def needs_management(incident: Incident) -> bool:
    return bool(incident.major) or (
        incident.priority is not None and incident.priority <= ESCALATING_PRIORITY
    )


def patch_incident(
    ctx: ServiceContext, actor: Actor, incident_id: int, payload: Any
) -> dict[str, Any]:
    if not actor.has_any(HANDLER_ROLES):
        raise Forbidden("only the service desk, engineers and the incident manager reclassify")
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    texts = _validate_texts(payload)
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        if incident.status == "closed":
            raise Conflict("the incident is closed")
        values = _validate_classification(ctx, incident, payload)
        now = ctx.now()
        escalated_before = needs_management(incident)
        log = EventLog(session, incident)
        for name, value in texts.items():
            old = getattr(incident, name)
            if value != old:
                setattr(incident, name, value)
                log.add("field_changed", actor.username, now, field=name, old=old, new=value)
        if values:
            _reclassify(ctx, session, incident, log, values, actor, now)
        incident.updated_at = now
        session.flush()
        escalate = not escalated_before and needs_management(incident)
        if not escalate:
            return incident_detail(session, incident, now, include_events=False)
    try:
        send_management_escalation(ctx, incident_id, actor.username)
    except IncidentMoved:
        # The change itself is kept; only the review's start lost the race twice.
        logger.warning("incident %s: management escalation not sent: it kept changing", incident_id)
    with ctx.db.read() as session:
        incident = session.get_one(Incident, incident_id)
        return incident_detail(session, incident, ctx.now(), include_events=False)


def _reclassify(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    log: EventLog,
    values: dict[str, Any],
    actor: Actor,
    now: Any,
) -> None:
    old_priority = incident.priority
    incident.category = values.get("category", incident.category)
    for name in ("impact", "urgency"):
        if name in values:
            setattr(incident, name, int(values[name]))
    if (
        incident.impact is not None
        and incident.urgency is not None
        and (incident.priority is not None)
    ):
        matrix = matrix_of(incident.policy_snapshot)
        incident.priority = priority_for(matrix, incident.impact, incident.urgency)
        incident.major = is_major(incident.impact, incident.priority)
    log.add("reclassified", actor.username, now, **values)
    if incident.priority != old_priority:
        log.add(
            "priority_changed",
            actor.username,
            now,
            None,
            **{"from": old_priority, "to": incident.priority},
        )
    _push_data_into_instance(ctx, session, incident, values)
    refresh_sla(ctx, incident, log)


def send_management_escalation(ctx: ServiceContext, incident_id: int, actor: str) -> None:
    """Start the manager review: signal the instance; record `management_escalation`
    once. When the review's task becomes ready, progress records the event (as for
    every management-lane task); a process without a catcher gets the event only."""

    def keep(session: Session, incident: Incident, log: EventLog, outcome: Any) -> int:
        if outcome is None:
            log.add("management_escalation", actor, ctx.now(), signal=MANAGEMENT_ESCALATION_SIGNAL)
            return 0
        before = set(_ready_management_tasks(session, incident.id))
        # The review's event then says that the app sent the signal, as the other two
        # of this function do: what-if replays such events as signals.
        log.tag("management_escalation", signal=MANAGEMENT_ESCALATION_SIGNAL)
        apply_outcome(ctx, session, incident, log, outcome, actor)
        session.flush()
        if not set(_ready_management_tasks(session, incident.id)) - before:
            # Caught, but no management task became ready: the event is still due.
            log.add("management_escalation", actor, ctx.now(), signal=MANAGEMENT_ESCALATION_SIGNAL)
        return 1

    step_outside_lock(
        ctx,
        incident_id,
        lambda state_json: lambda source, helpers: ctx.runtime.signal(
            source, state_json, MANAGEMENT_ESCALATION_SIGNAL, helpers
        ),
        keep,
        wanted=_review_wanted,
    )


def _review_wanted(incident: Incident) -> bool:
    """Still open and still needing the manager, with no manager review ready yet."""
    if incident.status == "closed" or not needs_management(incident):
        return False
    session = object_session(incident)
    assert session is not None
    ready = session.scalar(
        select(UserTaskRow.id).where(
            UserTaskRow.incident_id == incident.id,
            UserTaskRow.name == MANAGER_REVIEW_TASK,
            UserTaskRow.state == "ready",
        )
    )
    return ready is None


def _ready_management_tasks(session: Session, incident_id: int) -> list[str]:
    return list(
        session.scalars(
            select(UserTaskRow.id).where(
                UserTaskRow.incident_id == incident_id,
                UserTaskRow.lane == MANAGEMENT_LANE,
                UserTaskRow.state == "ready",
            )
        )
    )


def _validate_texts(payload: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for name, limit in TEXT_FIELDS.items():
        if name not in payload:
            continue
        value = payload[name]
        if value is None and name != "title":
            value = ""
        if not isinstance(value, str):
            errors[name] = "must be a string"
        elif len(value) > limit:
            errors[name] = f"must be at most {limit} characters"
        elif name == "title" and not value.strip():
            errors[name] = "is required"
        else:
            cleaned[name] = value.strip()
    if errors:
        raise Invalid("invalid values", errors)
    return cleaned


def _validate_classification(
    ctx: ServiceContext, incident: Incident, payload: dict[str, Any]
) -> dict[str, Any]:
    allowed = (*CLASSIFICATION_FIELDS, *TEXT_FIELDS)
    unknown = {k: "is not a field you can change" for k in payload if k not in allowed}
    if unknown:
        raise Invalid("invalid values", unknown)
    if not payload:
        raise Invalid("nothing to change", {f: "give at least one" for f in allowed})
    asked = {k: v for k, v in payload.items() if k in CLASSIFICATION_FIELDS}
    if not asked:
        return {}
    form = ctx.runtime.user_task(spec_source(incident.definition), CLASSIFY_TASK)
    subset = FormSpec(fields=tuple(f for f in form.form.fields if f.id in asked))
    try:
        cleaned = validate_submission(subset, asked)
    except FormValidationError as exc:
        raise Invalid("invalid values", exc.errors) from exc
    return {k: v for k, v in cleaned.items() if k in asked}


def _push_data_into_instance(
    ctx: ServiceContext, session: Session, incident: Incident, values: dict[str, Any]
) -> None:
    """Later gateways and scripts must see the corrected classification."""
    state = session.get(InstanceState, incident.id)
    if state is None or incident.status == "closed":
        return
    data = dict(values)
    if incident.priority is not None:
        data["priority"] = incident.priority
        data["major"] = incident.major
    definition = incident.definition
    state.state_json = ctx.runtime.update_data(spec_source(definition), state.state_json, data)
