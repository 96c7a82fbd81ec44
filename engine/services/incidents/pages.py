"""Read models for the browser's incident pages: the searchable list, the
detail page (staff and reporter views) and the process diagram.

Visibility is the same as the JSON API's (`engine.services.incidents.commands`):
staff see every incident, a reporter only their own, a vendor only those
that have or had a vendor task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.persistence.models import Event, Incident, Note, UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Invalid
from engine.services.incidents.audience import (
    audience_of,
    names_for,
    shown_detail,
    shown_events,
    shown_note,
)
from engine.services.incidents.clock_explain import explain_clocks
from engine.services.incidents.commands import CHANNELS, STATUSES, SUSPEND_CATEGORIES
from engine.services.incidents.views import (
    events_of,
    incident_detail,
    iso,
    labels_in_session,
    note_view,
)
from engine.services.incidents.visibility import load_visible, visible_incidents
from engine.services.sla.clocks import RESOLUTION, RESPONSE
from engine.services.sla.suspensions import incident_suspensions
from engine.workflow.lint import BPMN_NS, FLOW_NODE_TAGS
from engine.workflow.safe_xml import parse_bpmn_xml

PAGE_SIZE = 25
MAX_QUERY = 200
PHASES = ("identify", "investigate", "resolve", "closed")
# The default process's categories; categories of redesigned processes found in
# the data are offered as well.
DEFAULT_CATEGORIES = ("hardware", "software", "network", "access", "other")
SORT_COLUMNS = {
    "number": Incident.id,
    "created": Incident.created_at,
    "priority": Incident.priority,
    "due": Incident.resolution_due,
    "status": Incident.status,
}
DIRECTIONS = ("asc", "desc")
MAJOR_VALUES = ("yes", "no")
FILTERS = ("status", "priority", "phase", "category", "channel", "major")

RESOLUTION_FIELDS = ("resolution", "solution")


# -- the list ----------------------------------------------------------------


@dataclass(frozen=True)
class IncidentQuery:
    q: str = ""
    status: str = ""
    priority: str = ""
    phase: str = ""
    category: str = ""
    channel: str = ""
    major: str = ""
    sort: str = "number"
    direction: str = "desc"
    page: int = 1

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments of this query (with changes), defaults left out."""
        values = {
            "q": self.q,
            **{name: getattr(self, name) for name in FILTERS},
            "sort": self.sort,
            "direction": self.direction,
            "page": self.page,
        }
        values.update(changes)
        defaults = IncidentQuery()
        return {
            k: v for k, v in values.items() if v not in ("", None) and v != getattr(defaults, k)
        }


@dataclass
class IncidentPage:
    query: IncidentQuery
    items: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    page_size: int = PAGE_SIZE
    categories: list[str] = field(default_factory=list)

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.page_size + 1

    @property
    def last(self) -> int:
        return min(self.page * self.page_size, self.total)


def parse_query(args: Mapping[str, str]) -> IncidentQuery:
    """Check the list's query string; any bad value → Invalid with field messages."""
    errors: dict[str, str] = {}

    def text(name: str) -> str:
        value = args.get(name, "") or ""
        return value.strip()

    q = text("q")
    if len(q) > MAX_QUERY:
        errors["q"] = f"must be at most {MAX_QUERY} characters"
    choices: dict[str, tuple[str, ...]] = {
        "status": STATUSES,
        "priority": ("1", "2", "3", "4", "5"),
        "phase": PHASES,
        "channel": CHANNELS,
        "major": MAJOR_VALUES,
        "sort": tuple(SORT_COLUMNS),
        "direction": DIRECTIONS,
    }
    values: dict[str, str] = {}
    for name, allowed in choices.items():
        value = text(name)
        if value and value not in allowed:
            errors[name] = f"must be one of: {', '.join(allowed)}"
        values[name] = value
    category = text("category")
    if len(category) > 40:
        errors["category"] = "must be at most 40 characters"
    page = 1
    raw_page = text("page")
    if raw_page:
        try:
            page = int(raw_page)
        except ValueError:
            errors["page"] = "must be a whole number"
        else:
            if not 1 <= page <= 10**6:
                errors["page"] = "must be between 1 and 1000000"
    if errors:
        raise Invalid("invalid query", errors)
    return IncidentQuery(
        q=q,
        status=values["status"],
        priority=values["priority"],
        phase=values["phase"],
        category=category,
        channel=values["channel"],
        major=values["major"],
        sort=values["sort"] or "number",
        direction=values["direction"] or "desc",
        page=page,
    )


def search_incidents(ctx: ServiceContext, actor: Actor, query: IncidentQuery) -> IncidentPage:
    stmt = visible_incidents(actor)
    if query.q:
        stmt = stmt.where(
            Incident.number.icontains(query.q, autoescape=True)
            | Incident.title.icontains(query.q, autoescape=True)
            | Incident.contact.icontains(query.q, autoescape=True)
        )
    if query.status:
        stmt = stmt.where(Incident.status == query.status)
    if query.priority:
        stmt = stmt.where(Incident.priority == int(query.priority))
    if query.phase:
        stmt = stmt.where(Incident.phase == query.phase)
    if query.category:
        stmt = stmt.where(Incident.category == query.category)
    if query.channel:
        stmt = stmt.where(Incident.channel == query.channel)
    if query.major:
        stmt = stmt.where(Incident.major.is_(query.major == "yes"))
    column = SORT_COLUMNS[query.sort]
    ordered = column.asc() if query.direction == "asc" else column.desc()
    tie = Incident.id.asc() if query.direction == "asc" else Incident.id.desc()
    with ctx.db.read() as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(query.page, pages)
        rows = session.scalars(
            stmt.order_by(ordered.nulls_last(), tie).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        )
        items = [_list_item(i) for i in rows]
        return IncidentPage(
            query=query,
            items=items,
            total=total,
            page=page,
            pages=pages,
            categories=categories_in_use(session),
        )


def categories_in_use(session: Session) -> list[str]:
    found = session.scalars(
        select(Incident.category).where(Incident.category.is_not(None)).distinct()
    )
    extra = sorted({c for c in found if c and c not in DEFAULT_CATEGORIES})
    return [*DEFAULT_CATEGORIES, *extra]


def _list_item(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "priority": incident.priority,
        "major": incident.major,
        "status": incident.status,
        "phase": incident.phase,
        "channel": incident.channel,
        "category": incident.category,
        "created_at": incident.created_at,
        "resolution_due": incident.resolution_due,
        "clock_running": incident.status in ("new", "in_progress"),
    }


# -- the detail page ---------------------------------------------------------


def incident_page(ctx: ServiceContext, actor: Actor, incident_id: int) -> dict[str, Any]:
    """Everything the detail page shows, read in one transaction.

    `view` is "reporter" for the incident's own caller (unless they are staff): a
    plain view without internal work; otherwise "staff" (a vendor gets it too,
    narrowed by the same filter as the API: see `audience`)."""
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        audience = audience_of(actor, incident)
        staff = audience.staff
        now = ctx.now()
        detail = incident_detail(session, incident, now, include_events=False)
        events = events_of(session, incident.id, include_internal=staff)
        notes_query = select(Note).where(Note.incident_id == incident.id).order_by(Note.id)
        if not staff:
            notes_query = notes_query.where(Note.internal.is_(False))
        if audience.kind == "caller":
            # Vendor notes stay between the desk and the vendor (contract Part 2).
            notes_query = notes_query.where(Note.vendor.is_(False))
        notes = [note_view(n) for n in session.scalars(notes_query)]
        labels = labels_in_session(session, incident.id)
        view = "reporter" if audience.kind == "caller" else "staff"
        shows_reason = staff or incident.suspend_category == "awaiting_reporter"
        detail.update(
            {
                "suspend_reason": incident.suspend_reason if shows_reason else None,
                "suspend_category": incident.suspend_category,
                "resume_by": iso(incident.resume_by),
                "suspended_since": iso(incident.suspended_since),
                "status_before_suspend": incident.status_before_suspend,
            }
        )
        names = names_for(
            session,
            audience,
            events=events,
            tasks=detail["tasks"],
            notes=notes,
            incident_id=incident.id,
        )
        return {
            "incident": shown_detail(session, audience, detail),
            "view": view,
            "now": now,
            "events": shown_events(events, names),
            "notes": [shown_note(n, names) for n in notes],
            "task_labels": labels,
            # Outside the desk: the two clocks the contract promises, not the tiers.
            "clocks": [
                c
                for c in explain_clocks(session, incident, now)
                if staff or c["clock"] in (RESPONSE, RESOLUTION)
            ],
            "suspensions": incident_suspensions(session, incident.id, now) if staff else None,
            "resolution": resolution_text(events)
            if incident.status in ("resolved", "closed")
            else None,
            "can_note": staff or incident.caller_id == actor.id,
            "staff": staff,
            "suspend_categories": SUSPEND_CATEGORIES,
        }


def resolution_text(events: list[dict[str, Any]]) -> str | None:
    """The latest resolution typed into a resolving task."""
    for event in reversed(events):
        if event["type"] != "task_completed":
            continue
        values = event.get("values") or {}
        for name in RESOLUTION_FIELDS:
            text = values.get(name)
            if isinstance(text, str) and text.strip():
                return text
    return None


# -- the diagram -------------------------------------------------------------


def diagram(
    ctx: ServiceContext,
    actor: Actor,
    incident_id: int,
    translate: Callable[[str, str, str], str],
) -> dict[str, Any]:
    """The incident's own process version with its position.

    `translate(kind, element_id, bpmn_name)` gives the label to show; `kind`
    is "lane" or "element".  The names are rewritten in a parsed copy of the
    stored XML, which stays untouched."""
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        xml = incident.definition.bpmn_xml
        current = list(
            session.scalars(
                select(UserTaskRow.name)
                .where(UserTaskRow.incident_id == incident.id, UserTaskRow.state == "ready")
                .order_by(UserTaskRow.created_at)
            )
        )
        passed = session.execute(
            select(Event.type, Event.task)
            .where(
                Event.incident_id == incident.id,
                Event.type.in_(("created", "task_completed", "resolved", "reopened", "closed")),
            )
            .order_by(Event.id)
        ).all()
    tree = parse_bpmn_xml(xml.encode("utf-8"))
    names = relabel(tree, translate)
    ids = set(tree.getroot().xpath("//@id"))
    done: list[str] = []
    for kind, task in passed:
        element = task if kind == "task_completed" else _MARKER_ELEMENTS.get(kind)
        if element and element in ids and element not in done:
            done.append(element)
    return {
        "xml": etree.tostring(tree.getroot(), encoding="unicode"),
        "current": [c for c in dict.fromkeys(current) if c in ids],
        "done": done,
        "names": names,
    }


# Events that mark having passed a fixed element of the default process.
_MARKER_ELEMENTS = {
    "created": "incident_reported",
    "resolved": "incident_resolved",
    "reopened": "incident_reopened",
}


def relabel(tree: etree._ElementTree, translate: Callable[[str, str, str], str]) -> dict[str, str]:
    """Rewrite the `name` of flow nodes, flows and lanes (and the `value` of the category
    values that title the phase groups) in place; return the new names of flow nodes."""
    names: dict[str, str] = {}
    labelled = {*FLOW_NODE_TAGS, "sequenceFlow", "lane", "participant", "categoryValue"}
    for element in tree.getroot().iter(f"{{{BPMN_NS}}}*"):
        local = etree.QName(element).localname
        element_id = element.get("id")
        attribute = "value" if local == "categoryValue" else "name"
        name = element.get(attribute)
        if local not in labelled or not element_id or name is None:
            continue
        label = translate("lane" if local == "lane" else "element", element_id, name)
        if label != name:
            element.set(attribute, label)
        if local in FLOW_NODE_TAGS:
            names[element_id] = label
    return names
