"""Incident use cases: report, read, reclassify, suspend and resume (notes: `notes`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine.domain.roles import HANDLER_ROLES, STAFF_ROLES
from engine.persistence.models import Incident, ProcessDefinition, User
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid
from engine.services.incidents.audience import audience_of, shown_detail
from engine.services.incidents.callers import (
    CALLER_FIELDS,
    DEDUP_FIELD,
    Caller,
    open_incident_with_key,
    read_caller_request,
    resolve_caller,
)
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.event_pages import newest_only
from engine.services.incidents.notes import NOTE_LIMIT, Also, add_dedup_note
from engine.services.incidents.notes import add_note as add_note
from engine.services.incidents.notes import list_notes as list_notes
from engine.services.incidents.progress import apply_outcome, refresh_sla, run_step
from engine.services.incidents.record_edits import TEXT_FIELDS
from engine.services.incidents.record_edits import patch_incident as patch_incident
from engine.services.incidents.resuming import end_suspension
from engine.services.incidents.views import incident_detail, incident_summary
from engine.services.incidents.visibility import load_visible, visible_incidents
from engine.services.process.definitions import latest_definition
from engine.services.sla.snapshot import take_snapshot

CHANNELS = ("phone", "wechat", "email", "app", "web")
STATUSES = ("new", "in_progress", "suspended", "resolved", "closed")
SUSPEND_CATEGORIES = ("awaiting_reporter", "awaiting_vendor", "awaiting_change", "other")
SUSPENDABLE = ("new", "in_progress", "resolved")
TEXT_LIMITS = TEXT_FIELDS
MAX_PAGE = 200


# -- create ------------------------------------------------------------------


def create_incident(
    ctx: ServiceContext, actor: Actor, payload: Any, *, also: Also | None = None
) -> dict[str, Any]:
    """Report an incident (or, for a `dedup_key` already open, note it there).

    `also` runs inside the write transaction after the incident is inserted (and its
    number given), e.g. to store the inbound mail it came from."""
    return report_incident(ctx, actor, payload, also=also)[0]


def report_incident(
    ctx: ServiceContext, actor: Actor, payload: Any, *, also: Also | None = None
) -> tuple[dict[str, Any], bool]:
    """The incident as its reporter sees it, and whether it is new (False: a program's
    report with the `dedup_key` of an open incident, added to it as a note).

    The process starts (its first scripts run) in a read transaction; the write then
    only inserts what the start produced."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    asked = read_caller_request(actor, payload)
    fields = _validate_new_incident(
        {k: v for k, v in payload.items() if k not in (*CALLER_FIELDS, DEDUP_FIELD)}
    )
    now = ctx.now()
    with ctx.db.read() as session, session.no_autoflush:
        caller = resolve_caller(session, actor, asked)
        if asked.dedup_key and open_incident_with_key(session, asked.dedup_key, lock=False):
            outcome = None
        else:
            definition = latest_definition(session)
            definition_id = definition.id
            snapshot = take_snapshot(session)
            draft = _new_incident(fields, actor, caller, definition, snapshot, now)
            log = EventLog(session, draft, new=True)
            log.add("created", actor.username, now, channel=draft.channel, caller=caller.name)
            outcome = run_step(
                ctx,
                session,
                draft,
                log,
                lambda source, helpers: ctx.runtime.start(source, helpers, {}),
            )
    with ctx.db.write() as session:
        if asked.dedup_key:
            # One program's reports with a key are taken one at a time, so that two at
            # once cannot both find no open incident (portable: no advisory locks).
            session.get(User, actor.id, with_for_update={"of": User})
            duplicate = open_incident_with_key(session, asked.dedup_key, lock=True)
            if duplicate is not None:
                text = "\n\n".join(p for p in (fields["title"], fields["description"]) if p)
                add_dedup_note(ctx, session, duplicate, actor, text, now)
                session.flush()
                detail = incident_detail(session, duplicate, now)
                return shown_detail(session, audience_of(actor, duplicate), detail), False
            if outcome is None:
                # The open one closed meanwhile: report anew (the start runs again).
                raise Conflict("the incident with this dedup_key just closed: send it again")
        # The version the step ran on, even if another was deployed meanwhile.
        definition = session.get_one(ProcessDefinition, definition_id)
        incident = _new_incident(fields, actor, caller, definition, snapshot, now)
        incident.dedup_key = asked.dedup_key
        session.add(incident)
        session.flush()
        incident.number = f"INC-{incident.id:06d}"
        log = EventLog(session, incident, new=True)
        log.add("created", actor.username, now, channel=incident.channel, caller=caller.name)
        assert outcome is not None
        apply_outcome(ctx, session, incident, log, outcome, actor.username)
        if also is not None:
            also(session, incident, now)
        session.flush()
        detail = incident_detail(session, incident, now)
        return shown_detail(session, audience_of(actor, incident), detail), True


def _new_incident(
    fields: dict[str, str],
    actor: Actor,
    caller: Caller,
    definition: ProcessDefinition,
    snapshot: dict[str, Any],
    now: datetime,
) -> Incident:
    incident = Incident(
        title=fields["title"],
        description=fields["description"],
        contact=fields["contact"],
        channel=fields["channel"],
        status="new",
        phase="identify",
        major=False,
        created_by_id=actor.id,
        caller_id=caller.user_id,
        caller_email=caller.email,
        definition_id=definition.id,
        policy_snapshot=snapshot,
        created_at=now,
        updated_at=now,
        suspended_seconds=0.0,
        breached=False,
    )
    incident.definition = definition
    return incident


def _validate_new_incident(payload: Any) -> dict[str, str]:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for name, limit in TEXT_LIMITS.items():
        value = payload.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[name] = "must be a string"
        elif len(value) > limit:
            errors[name] = f"must be at most {limit} characters"
        else:
            cleaned[name] = value.strip()
    if not errors.get("title") and not cleaned.get("title"):
        errors["title"] = "is required"
    channel = payload.get("channel")
    if channel not in CHANNELS:
        errors["channel"] = f"must be one of: {', '.join(CHANNELS)}"
    else:
        cleaned["channel"] = channel
    for name in payload:
        if name not in (*TEXT_LIMITS, "channel"):
            errors[name] = "is not a field of an incident report"
    if errors:
        raise Invalid("invalid incident", errors)
    return cleaned


# -- read --------------------------------------------------------------------


def list_incidents(
    ctx: ServiceContext,
    actor: Actor,
    *,
    status: str | None = None,
    priority: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if status and status not in STATUSES:
        errors["status"] = f"must be one of: {', '.join(STATUSES)}"
    prio = _int_param(priority, "priority", 1, 5, errors) if priority else None
    lim = _int_param(limit, "limit", 1, MAX_PAGE, errors) if limit else 50
    off = _int_param(offset, "offset", 0, 10**9, errors) if offset else 0
    if errors:
        raise Invalid("invalid query", errors)
    query = visible_incidents(actor)
    if status:
        query = query.where(Incident.status == status)
    if prio is not None:
        query = query.where(Incident.priority == prio)
    with ctx.db.read() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(query.order_by(Incident.id.desc()).limit(lim).offset(off))
        return {"items": [incident_summary(i) for i in rows], "total": total}


def _int_param(raw: str, name: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        errors[name] = "must be a whole number"
        return None
    if not low <= value <= high:
        errors[name] = f"must be between {low} and {high}"
        return None
    return value


def get_incident(ctx: ServiceContext, actor: Actor, incident_id: int) -> dict[str, Any]:
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        staff = actor.has_any(STAFF_ROLES)
        detail = incident_detail(
            session, incident, ctx.now(), include_internal=staff, explain=staff
        )
        return newest_only(shown_detail(session, audience_of(actor, incident), detail))


# -- suspend / resume --------------------------------------------------------


def suspend(ctx: ServiceContext, actor: Actor, incident_id: int, payload: Any) -> dict[str, Any]:
    if not actor.has_any(HANDLER_ROLES):
        raise Forbidden("only the service desk, engineers and the incident manager suspend")
    reason, category, resume_by = _validate_suspension(payload, ctx.now())
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        if incident.status not in SUSPENDABLE:
            raise Conflict(f"a {incident.status} incident cannot be suspended")
        now = ctx.now()
        log = EventLog(session, incident)
        incident.status_before_suspend = incident.status
        incident.status = "suspended"
        incident.suspended_since = now
        incident.suspend_reason = reason
        incident.suspend_category = category
        incident.resume_by = resume_by
        log.add(
            "suspended",
            actor.username,
            now,
            reason=reason,
            category=category,
            resume_by=resume_by.isoformat() if resume_by else None,
        )
        refresh_sla(ctx, incident, log)
        incident.updated_at = now
        session.flush()
        return incident_detail(session, incident, now, include_events=False)


def resume(ctx: ServiceContext, actor: Actor, incident_id: int) -> dict[str, Any]:
    if not actor.has_any(HANDLER_ROLES):
        raise Forbidden("only the service desk, engineers and the incident manager resume")
    with ctx.db.write() as session:
        incident = load_visible(session, actor, incident_id, for_update=True)
        if incident.status != "suspended":
            raise Conflict("the incident is not suspended")
        now = ctx.now()
        log = EventLog(session, incident)
        end_suspension(ctx, incident, log, actor.username, now, reason="resumed by hand")
        incident.updated_at = now
        session.flush()
        return incident_detail(session, incident, now, include_events=False)


def resume_when_due(
    ctx: ServiceContext, incident: Incident, log: EventLog, now: datetime
) -> bool:
    """Resume a suspension whose resume-by time has come (the timer worker calls this)."""
    if incident.status != "suspended" or incident.resume_by is None or incident.resume_by > now:
        return False
    end_suspension(ctx, incident, log, "system", now, reason="resume-by time reached")
    return True


def resume_if_suspended(
    ctx: ServiceContext, incident: Incident, log: EventLog, actor: str, now: datetime
) -> None:
    if incident.status == "suspended":
        end_suspension(ctx, incident, log, actor, now, reason="a task was completed")


def _validate_suspension(payload: Any, now: datetime) -> tuple[str, str | None, datetime | None]:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {}
    reason = payload.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = "is required"
    elif len(reason) > NOTE_LIMIT:
        errors["reason"] = f"must be at most {NOTE_LIMIT} characters"
    category = payload.get("category")
    if category is not None and category not in SUSPEND_CATEGORIES:
        errors["category"] = f"must be one of: {', '.join(SUSPEND_CATEGORIES)}"
    resume_by = None
    raw = payload.get("resume_by")
    if raw is not None:
        try:
            resume_by = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            resume_by = None
        if resume_by is None or resume_by.tzinfo is None:
            errors["resume_by"] = "must be an ISO 8601 time with a UTC offset"
        elif resume_by <= now:
            errors["resume_by"] = "must be in the future"
    for name in payload:
        if name not in ("reason", "category", "resume_by"):
            errors[name] = "is not a field of a suspension"
    if errors:
        raise Invalid("invalid suspension", errors)
    return str(reason).strip(), category, resume_by
