"""An incident's history a page at a time (contract Part 2, "Lists"): the detail
carries the newest DETAIL_EVENTS events, in time order, with `events_total`;
`GET /incidents/ID/events` pages through all of them, oldest first.  Both count
what the reader may see (a caller's history is narrower than the desk's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.domain.paging import parse_page, shown_total
from engine.domain.roles import STAFF_ROLES
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Invalid
from engine.services.incidents.audience import audience_of, names_for, shown_events
from engine.services.incidents.views import events_of
from engine.services.incidents.visibility import load_visible

DETAIL_EVENTS = 100


def newest_only(detail: dict[str, Any]) -> dict[str, Any]:
    """A detail as shown to its reader, cut to the newest DETAIL_EVENTS events."""
    events = detail.get("events")
    if events is None:
        return detail
    return {**detail, "events": events[-DETAIL_EVENTS:], "events_total": len(events)}


def list_events(
    ctx: ServiceContext, actor: Actor, incident_id: int, args: Mapping[str, str]
) -> dict[str, Any]:
    page, errors = parse_page(args)
    if errors:
        raise Invalid("invalid query", errors)
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        staff = actor.has_any(STAFF_ROLES)
        events = events_of(session, incident.id, include_internal=staff)
        audience = audience_of(actor, incident)
        if not audience.staff:
            names = names_for(session, audience, events=events, incident_id=incident.id)
            events = shown_events(events, names)
    total, exact = shown_total(len(events))
    answer: dict[str, Any] = {"items": events[page.offset : page.offset + page.limit]}
    answer["total"] = total
    if not exact:
        answer["total_exact"] = False
    return answer
