"""Ending a suspension: the one way the clocks start again (by hand, by time, by a
completed task, or because the caller answered)."""

from __future__ import annotations

from datetime import datetime

from engine.persistence.models import Incident
from engine.services.context import ServiceContext
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import refresh_sla

AWAITING_REPORTER = "awaiting_reporter"


def end_suspension(
    ctx: ServiceContext, incident: Incident, log: EventLog, actor: str, now: datetime, reason: str
) -> None:
    if incident.suspended_since is not None:
        incident.suspended_seconds += (now - incident.suspended_since).total_seconds()
    incident.status = incident.status_before_suspend or "in_progress"
    incident.status_before_suspend = None
    incident.suspended_since = None
    incident.suspend_reason = None
    incident.suspend_category = None
    incident.resume_by = None
    log.add("resumed", actor, now, reason=reason)
    refresh_sla(ctx, incident, log)


def resume_if_awaiting_caller(
    ctx: ServiceContext, incident: Incident, log: EventLog, actor: str, now: datetime
) -> None:
    """The caller answered (a note, a mail, a note on their behalf): a suspension
    awaiting the reporter ends."""
    if incident.status == "suspended" and incident.suspend_category == AWAITING_REPORTER:
        end_suspension(ctx, incident, log, actor, now, reason="reporter replied")
