"""What the outbox holds, for people and for Prometheus: an incident's mails (staff,
`GET /api/v1/incidents/ID/notifications` and the incident page) and the backlog
gauges of /metrics (mails queued, age of the oldest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.domain.paging import Page
from engine.domain.roles import STAFF_ROLES
from engine.persistence.models import Notification
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden
from engine.services.incidents.visibility import load_visible
from engine.services.notify import (
    backlog,
    outbox,  # noqa: F401  (registers the producer)
)
from engine.services.paging import counted, paged


@dataclass(frozen=True)
class MailPage:
    items: list[dict[str, Any]]
    total: int
    exact: bool


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def notification_json(row: Notification) -> dict[str, Any]:
    return {
        "at": _iso(row.sent_at or row.created_at),
        "to": row.to_address,
        "subject": row.subject,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
    }


def incident_notifications(
    ctx: ServiceContext, actor: Actor, incident_id: int, page: Page
) -> MailPage:
    """The incident's mails, oldest first (staff only: addresses are personal)."""
    if not actor.has_any(STAFF_ROLES):
        raise Forbidden("only staff see an incident's notifications")
    with ctx.db.read() as session:
        load_visible(session, actor, incident_id)
        query = select(Notification).where(Notification.incident_id == incident_id)
        total = counted(session, query)
        rows = session.scalars(paged(query.order_by(Notification.id), page)).all()
        return MailPage([notification_json(row) for row in rows], total.shown, total.exact)


def backlog_exposition(ctx: ServiceContext) -> bytes:
    """The outbox gauges for /metrics, in the Prometheus text format."""
    return backlog.exposition(
        ctx,
        Notification,
        ("itsm_mail_queued", "Mails in the outbox waiting to be sent (first tries and retries)."),
        (
            "itsm_mail_oldest_queued_age_seconds",
            "Seconds since the oldest queued mail was queued (0 when none).",
        ),
    )
