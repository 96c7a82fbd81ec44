"""Translated labels for the codes the contract fixes (roles, statuses, …).

The msgids are written out so that the catalog extractor finds them.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

ROLES = {
    "reporter": _l("Reporter"),
    "service_desk": _l("Service desk"),
    "level2": _l("Level-2 engineer"),
    "level3": _l("Level-3 engineer"),
    "vendor": _l("Vendor"),
    "incident_manager": _l("Incident manager"),
    "director": _l("Director in charge"),
    "designer": _l("Process designer"),
    "admin": _l("Administrator"),
    "integration": _l("Integration (program)"),
}
STATUSES = {
    "new": _l("New"),
    "in_progress": _l("In progress"),
    "suspended": _l("Suspended"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
}
PHASES = {
    "identify": _l("Identify and record"),
    "investigate": _l("Investigate and diagnose"),
    "resolve": _l("Resolve and close"),
    "closed": _l("Closed"),
}
CHANNELS = {
    "phone": _l("Phone"),
    "wechat": _l("WeChat"),
    "email": _l("Email"),
    "app": _l("Mobile app"),
    "web": _l("Web"),
}
EVENTS = {
    "created": _l("Reported"),
    "task_completed": _l("Step completed"),
    "claimed": _l("Claimed"),
    "released": _l("Released"),
    "assigned": _l("Assigned"),
    "technical_escalation": _l("Technical escalation"),
    "management_escalation": _l("Management escalation"),
    "priority_changed": _l("Priority changed"),
    "reclassified": _l("Reclassified"),
    "field_changed": _l("Record corrected"),
    "suspended": _l("Suspended"),
    "resumed": _l("Resumed"),
    "sla_warning": _l("SLA warning"),
    "sla_breached": _l("SLA breached"),
    "sla_escalated": _l("SLA escalated to the incident manager"),
    "stage_entered": _l("Now with a tier"),
    "stage_left": _l("No longer with a tier"),
    "resolved": _l("Resolved"),
    "reopened": _l("Reopened"),
    "cancelled": _l("Cancelled"),
    "closed": _l("Closed"),
    "note_added": _l("Note added"),
    "attachment_added": _l("Attachment uploaded"),
    "survey_answered": _l("Late survey answered"),
    "caller_links_revoked": _l("Caller's links revoked"),
    "linked_record_created": _l("Linked record created"),
    "error": _l("Process error"),
}


def _lookup(table: dict[str, object], code: str | None) -> str:
    if code is None:
        return "—"
    label = table.get(code)
    return str(label) if label is not None else code


def role_label(code: str | None) -> str:
    return _lookup(ROLES, code)  # type: ignore[arg-type]


def status_label(code: str | None) -> str:
    return _lookup(STATUSES, code)  # type: ignore[arg-type]


def phase_label(code: str | None) -> str:
    return _lookup(PHASES, code)  # type: ignore[arg-type]


def channel_label(code: str | None) -> str:
    return _lookup(CHANNELS, code)  # type: ignore[arg-type]


def event_label(code: str | None) -> str:
    return _lookup(EVENTS, code)  # type: ignore[arg-type]


def priority_label(priority: int | None) -> str:
    return _("P%(n)d", n=priority) if priority else "—"


CLOCKS = {
    "response": _l("Response"),
    "resolution": _l("Resolution"),
    "service_desk": _l("With the service desk"),
    "level2": _l("With level 2"),
    "level3": _l("With level 3"),
    "vendor": _l("With the vendor"),
}
CLOCK_STATES = {
    "running": _l("running"),
    "paused": _l("paused"),
    "met": _l("met"),
    "breached": _l("breached"),
    "not_started": _l("not started"),
    "stopped": _l("stopped"),
}


def clock_label(code: str | None) -> str:
    return _lookup(CLOCKS, code)  # type: ignore[arg-type]


def clock_state_label(code: str | None) -> str:
    return _lookup(CLOCK_STATES, code)  # type: ignore[arg-type]


CALENDARS = {
    "24x7": _l("24×7 (around the clock)"),
    "taiwan_business_hours": _l("Taiwan business hours"),
}


def sla_calendar_label(code: str | None) -> str:
    return _lookup(CALENDARS, code)  # type: ignore[arg-type]
