"""Plain, JSON-ready shapes of incidents, tasks and events (contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import (
    Attachment,
    Event,
    Incident,
    LinkedRecord,
    Note,
    UserTaskRow,
)
from engine.services.incidents.clock_explain import explain_clocks
from engine.services.sla.suspensions import incident_suspensions


def caller_name(incident: Incident) -> str:
    """The caller as lists and exports name them: the username, else the address."""
    if incident.caller is not None:
        return incident.caller.username
    return incident.caller_email or ""


def caller_of(incident: Incident) -> dict[str, str | None]:
    """`caller: {username, email}` of the incident's JSON view (contract Part 2)."""
    if incident.caller is not None:
        return {"username": incident.caller.username, "email": incident.caller.email}
    return {"username": None, "email": incident.caller_email}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_summary(row: UserTaskRow, incident: Incident) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "label": row.label,
        "lane": row.lane,
        "incident_id": row.incident_id,
        "number": incident.number,
        "title": incident.title,
        "priority": incident.priority,
        "claimed_by": row.claimant.username if row.claimant is not None else None,
        "created_at": iso(row.created_at),
        "vendor_org": row.vendor_org,
    }


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "channel": incident.channel,
        "category": incident.category,
        "status": incident.status,
        "phase": incident.phase,
        "priority": incident.priority,
        "impact": incident.impact,
        "urgency": incident.urgency,
        "major": incident.major,
        "created_at": iso(incident.created_at),
        "updated_at": iso(incident.updated_at),
        "resolution_due": iso(incident.resolution_due),
    }


def incident_detail(
    session: Session,
    incident: Incident,
    now: datetime,
    *,
    include_events: bool = True,
    include_internal: bool = True,
    explain: bool = False,
    ready_tasks: list[UserTaskRow] | None = None,
) -> dict[str, Any]:
    """`ready_tasks`, when the caller has them at hand, saves a query. `explain` adds, for
    staff, every clock's explanation and who had the incident on hold for how long."""
    if ready_tasks is None:
        ready_tasks = list(
            session.scalars(
                select(UserTaskRow)
                .where(UserTaskRow.incident_id == incident.id, UserTaskRow.state == "ready")
                .order_by(UserTaskRow.created_at)
            )
        )
    result = incident_summary(incident)
    result.update(
        {
            "description": incident.description,
            "contact": incident.contact,
            "reporter": caller_name(incident),
            "caller": caller_of(incident),
            "resolved_at": iso(incident.resolved_at),
            "closed_at": iso(incident.closed_at),
            "error": incident.error,
            "sla": _sla(incident, now),
            "tasks": [task_summary(row, incident) for row in ready_tasks],
            "links": [
                {
                    "kind": r.kind,
                    "number": r.number,
                    "title": r.title,
                    "status": r.status,
                    "creator": r.creator,
                    "created_at": iso(r.created_at),
                }
                for r in session.scalars(
                    select(LinkedRecord)
                    .where(LinkedRecord.incident_id == incident.id)
                    .order_by(LinkedRecord.id)
                )
            ],
            "process": {"key": incident.definition.key, "version": incident.definition.version},
            "attachments": [
                attachment_view(a)
                for a in session.scalars(
                    select(Attachment)
                    .where(Attachment.incident_id == incident.id)
                    .order_by(Attachment.id)
                )
            ],
        }
    )
    if include_events:
        result["events"] = events_of(session, incident.id, include_internal=include_internal)
    if explain:
        result["sla"]["clocks"] = explain_clocks(session, incident, now)
        result["sla"]["suspensions"] = incident_suspensions(session, incident.id, now)
    return result


def events_of(session: Session, incident_id: int, *, include_internal: bool) -> list[dict]:
    out = []
    for e in session.scalars(
        select(Event).where(Event.incident_id == incident_id).order_by(Event.id)
    ):
        if not include_internal and e.data.get("internal"):
            continue
        item: dict[str, Any] = {"at": iso(e.at), "actor": e.actor, "type": e.type}
        if e.task:
            item["task"] = e.task
        item.update({k: v for k, v in e.data.items() if k not in item})
        out.append(item)
    return out


def note_view(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "at": iso(note.at),
        "author": note.author,
        "text": note.text,
        "internal": note.internal,
        "vendor": note.vendor,
        "via": note.via,
    }


def attachment_view(row: Attachment) -> dict[str, Any]:
    """An attachment's JSON (contract Part 2, "Attachments"), `vendor` added."""
    return {
        "id": row.id,
        "filename": row.filename,
        "size": row.size,
        "content_type": row.content_type,
        "sha256": row.sha256,
        "internal": row.internal,
        "vendor": row.vendor,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": iso(row.uploaded_at),
    }


def _sla(incident: Incident, now: datetime) -> dict[str, Any]:
    suspended_seconds = incident.suspended_seconds
    if incident.suspended_since is not None:
        suspended_seconds += (now - incident.suspended_since).total_seconds()
    return {
        "response_due": iso(incident.response_due),
        "resolution_due": iso(incident.resolution_due),
        "suspended": incident.status == "suspended",
        "suspended_seconds": round(suspended_seconds, 3),
        "breached": incident.breached or _overdue(incident, now),
        "policy": _policy_in_force(incident),
    }


def _policy_in_force(incident: Incident) -> dict[str, Any] | None:
    """Which policy version and calendar the clocks count with (from the snapshot)."""
    if incident.priority is None:
        return None
    policy = incident.policy_snapshot["sla"].get(str(incident.priority), {})
    return {
        "priority": incident.priority,
        "version": policy.get("version"),
        "calendar": policy.get("calendar", "24x7"),
        "response_seconds": policy.get("response_seconds"),
        "resolution_seconds": policy.get("resolution_seconds"),
    }


def _overdue(incident: Incident, now: datetime) -> bool:
    """A running clock past its due time (recorded as a breach when it fires)."""
    if incident.priority is None or incident.status in ("suspended", "closed"):
        return False
    if incident.status == "new" and incident.response_due and incident.response_due <= now:
        return True
    return bool(
        incident.status in ("new", "in_progress")
        and incident.resolution_due
        and incident.resolution_due <= now
    )


def labels_in_session(session: Session, incident_id: int) -> dict[str, str]:
    """The same, in the caller's transaction; the newest label of a task wins."""
    rows = session.execute(
        select(UserTaskRow.name, UserTaskRow.label)
        .where(UserTaskRow.incident_id == incident_id)
        .order_by(UserTaskRow.created_at, UserTaskRow.id)
    )
    return {name: label for name, label in rows}
