"""Webhooks for programs (contract Part 2, "Intake ... webhooks"): an admin registers
a URL, the event types it wants and a secret; every such event is queued for it in
the transaction that writes the event (`queue_deliveries`, at commit) and POSTed
later by the delivery loop (`webhook_delivery`).

The secret is stored to sign each body and never answered.  A deleted webhook stays
(soft delete) so its delivery log can still be read; nothing more is queued for it.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.paging import parse_page
from engine.domain.webhook_hosts import (
    WebhookTarget,
    WebhookUrlError,
    callable_addresses,
    parse_webhook_url,
)
from engine.persistence.models import Event, Incident, Webhook, WebhookDelivery
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound
from engine.services.notify.committed import Written, produce_at_commit
from engine.services.paging import counted, paged

# The incident event types the app writes (grep `.add(` on EventLog in
# engine/services), and those contract Part 2 adds; a webhook subscribes to some.
INCIDENT_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "created",
        "task_completed",
        "claimed",
        "released",
        "assigned",
        "technical_escalation",
        "management_escalation",
        "priority_changed",
        "reclassified",
        "suspended",
        "resumed",
        "sla_warning",
        "sla_breached",
        "sla_escalated",
        "stage_entered",
        "stage_left",
        "resolved",
        "reopened",
        "cancelled",
        "closed",
        "note_added",
        "migrated",
        "error",
        # contract Part 2
        "field_changed",
        "attachment_added",
        "record_linked",
        "linked_record_created",
        "notification_failed",
        "survey_answered",
    }
)
SECRET_MIN = 16  # ours: shorter secrets are guessable enough to forge signatures
SECRET_MAX = 200  # the column
FIELDS = frozenset({"url", "events", "secret"})
ADMIN_ONLY = "only an admin manages webhooks"
QUEUED, DELIVERED, FAILED = "queued", "delivered", "failed"


def _require_admin(actor: Actor) -> None:
    if "admin" not in actor.roles:
        raise Forbidden(ADMIN_ONLY)


def resolve(target: WebhookTarget) -> list[str]:
    """The addresses the target's host resolves to (the system resolver; slow work:
    never inside a transaction)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlError(f"host {target.host} cannot be resolved ({exc})") from None
    return [str(info[4][0]) for info in infos]


def check_target(url: str, allowed_hosts: tuple[str, ...]) -> tuple[WebhookTarget, list[str]]:
    """The parsed URL and the addresses it may be called at; WebhookUrlError if none."""
    target = parse_webhook_url(url)
    return target, callable_addresses(target.host, resolve(target), allowed_hosts)


def _validate(ctx: ServiceContext, payload: Any) -> tuple[str, list[str], str]:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {field: "unknown field" for field in sorted(set(payload) - FIELDS)}
    url = payload.get("url")
    if not isinstance(url, str) or not url.strip():
        errors["url"] = "is required"
    else:
        url = url.strip()
        try:
            check_target(url, ctx.channels.webhook_allowed_hosts)
        except WebhookUrlError as exc:
            errors["url"] = str(exc)
    events = payload.get("events")
    chosen: list[str] = []
    if not isinstance(events, list) or not events:
        errors["events"] = "must be a non-empty list of event types"
    elif not all(isinstance(e, str) for e in events):
        errors["events"] = "must list event types as strings"
    else:
        unknown = sorted({e for e in events if e not in INCIDENT_EVENT_TYPES})
        if unknown:
            errors["events"] = f"unknown event types: {', '.join(unknown)[:300]}"
        chosen = list(dict.fromkeys(events))
    secret = payload.get("secret")
    if not isinstance(secret, str) or not secret:
        errors["secret"] = "is required"
    elif not SECRET_MIN <= len(secret) <= SECRET_MAX:
        errors["secret"] = f"must be {SECRET_MIN} to {SECRET_MAX} characters"
    if errors:
        raise Invalid("invalid webhook", errors)
    return str(url), chosen, str(secret)


def create_webhook(ctx: ServiceContext, admin: Actor, payload: Any) -> dict[str, Any]:
    """201 `{id, url, events, created_at, created_by}`; the host is resolved and
    checked first, outside the transaction."""
    _require_admin(admin)
    url, events, secret = _validate(ctx, payload)
    with ctx.db.write() as session:
        row = Webhook(
            url=url, events=events, secret=secret, created_by=admin.username, created_at=ctx.now()
        )
        session.add(row)
        session.flush()
        admin_events.record(
            session,
            admin.username,
            admin_events.WEBHOOK_CREATED,
            row.created_at,
            webhook_id=row.id,
            url=url,
            events=events,
        )
        return webhook_view(row)


def list_webhooks(ctx: ServiceContext, admin: Actor, args: dict[str, str]) -> dict[str, Any]:
    """`{items, total}` newest first; deleted ones too (they say so: `deleted_at`)."""
    _require_admin(admin)
    page, errors = parse_page(args)
    if errors:
        raise Invalid("invalid query", errors)
    with ctx.db.read() as session:
        query = select(Webhook)
        total = counted(session, query)
        rows = session.scalars(paged(query.order_by(Webhook.id.desc()), page)).all()
        return {"items": [webhook_view(r) for r in rows], **total.fields()}


def get_webhook(ctx: ServiceContext, admin: Actor, webhook_id: int) -> dict[str, Any]:
    _require_admin(admin)
    with ctx.db.read() as session:
        row = session.get(Webhook, webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return webhook_view(row)


def delete_webhook(ctx: ServiceContext, admin: Actor, webhook_id: int) -> dict[str, Any]:
    """Soft delete: nothing more is sent to it; its delivery log stays.  Deleting a
    deleted webhook changes nothing."""
    _require_admin(admin)
    with ctx.db.write() as session:
        row = session.get(Webhook, webhook_id, with_for_update=True)
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        if row.deleted_at is None:
            row.deleted_at = ctx.now()
            admin_events.record(
                session,
                admin.username,
                admin_events.WEBHOOK_DELETED,
                row.deleted_at,
                webhook_id=row.id,
                url=row.url,
            )
        session.flush()
        return webhook_view(row)


def list_deliveries(
    ctx: ServiceContext, admin: Actor, webhook_id: int, args: dict[str, str]
) -> dict[str, Any]:
    """`{items, total}` of one webhook's deliveries, newest first."""
    _require_admin(admin)
    page, errors = parse_page(args)
    if errors:
        raise Invalid("invalid query", errors)
    with ctx.db.read() as session:
        if session.get(Webhook, webhook_id) is None:
            raise NotFound(f"webhook {webhook_id} not found")
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        total = counted(session, query)
        rows = session.scalars(paged(query.order_by(WebhookDelivery.id.desc()), page)).all()
        return {"items": [delivery_view(r) for r in rows], **total.fields()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def webhook_view(row: Webhook) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events or []),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "deleted_at": _iso(row.deleted_at),
    }


def delivery_view(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "response_status": row.response_status,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_attempt_at) if row.status == QUEUED else None,
        "delivered_at": _iso(row.delivered_at),
    }


def event_body(event: Event, incident: Incident) -> str:
    """The JSON body, serialized once: exactly these bytes are signed and sent.  The
    incident's fields are as this transaction leaves it."""
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "at": _iso(event.at),
            "incident": {
                "id": incident.id,
                "number": incident.number,
                "status": incident.status,
                "priority": incident.priority,
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


@produce_at_commit
def queue_deliveries(session: Session, written: Written) -> None:
    """One queued delivery per new event and live webhook that subscribes to its type.
    The live webhooks are read once per committing transaction (a few rows)."""
    if not written.events:
        return
    hooks = session.execute(
        select(Webhook.id, Webhook.events).where(Webhook.deleted_at.is_(None))
    ).all()
    if not hooks:
        return
    subscribed = [(hook_id, set(types or [])) for hook_id, types in hooks]
    for event in written.events:
        wanted = [hook_id for hook_id, types in subscribed if event.type in types]
        if not wanted:
            continue
        incident = session.get(Incident, event.incident_id)
        if incident is None:
            continue
        payload = event_body(event, incident)
        for hook_id in wanted:
            session.add(
                WebhookDelivery(
                    webhook_id=hook_id,
                    event_id=event.id,
                    event_type=event.type,
                    payload=payload,
                    status=QUEUED,
                    attempts=0,
                    next_attempt_at=event.at,
                    created_at=event.at,
                )
            )
