"""The browser inbox: the ready tasks of the caller's lanes, filtered, sorted and paged.

Query parameters arrive as text (from a URL); bad ones raise `Invalid` with one
message per parameter, so that a page can show them next to its filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from engine.domain.roles import LANE_ROLES
from engine.persistence.models import Incident, User, UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid
from engine.services.incidents.views import iso, labels_in_session
from engine.services.incidents.visibility import load_visible, task_conditions

PAGE_SIZE = 25
SORTS = ("due", "priority", "age", "number")
DIRECTIONS = ("asc", "desc")
VIEWS = ("lanes", "mine")
DEFAULT_SORT = "due"


def inbox_lanes(actor: Actor) -> list[str]:
    """The lanes whose tasks this user works on (the reporter lane has no inbox)."""
    return sorted(actor.roles & (LANE_ROLES - {"reporter"}))


@dataclass(frozen=True)
class InboxQuery:
    lane: str | None = None
    priority: int | None = None
    view: str = "lanes"
    sort: str = DEFAULT_SORT
    direction: str = "asc"
    page: int = 1

    def as_params(self) -> dict[str, Any]:
        """The non-default parameters, as they appear in the URL."""
        params: dict[str, Any] = {}
        if self.lane:
            params["lane"] = self.lane
        if self.priority is not None:
            params["priority"] = self.priority
        if self.view != "lanes":
            params["view"] = self.view
        if self.sort != DEFAULT_SORT or self.direction != "asc":
            params["sort"] = self.sort
            params["dir"] = self.direction
        if self.page != 1:
            params["page"] = self.page
        return params


def parse_query(actor: Actor, args: dict[str, str]) -> InboxQuery:
    """Validate the URL parameters; `Invalid` lists every bad one."""
    errors: dict[str, str] = {}
    lanes = inbox_lanes(actor)
    lane = args.get("lane") or None
    if lane is not None and lane not in lanes:
        errors["lane"] = f"must be one of your lanes: {', '.join(lanes)}"
        lane = None
    priority: int | None = None
    raw_priority = args.get("priority") or ""
    if raw_priority:
        if raw_priority in ("1", "2", "3", "4", "5"):
            priority = int(raw_priority)
        else:
            errors["priority"] = "must be between 1 and 5"
    view = args.get("view") or "lanes"
    if view not in VIEWS:
        errors["view"] = f"must be one of: {', '.join(VIEWS)}"
        view = "lanes"
    sort = args.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        errors["sort"] = f"must be one of: {', '.join(SORTS)}"
        sort = DEFAULT_SORT
    direction = args.get("dir") or "asc"
    if direction not in DIRECTIONS:
        errors["dir"] = f"must be one of: {', '.join(DIRECTIONS)}"
        direction = "asc"
    page = 1
    raw_page = args.get("page") or ""
    if raw_page:
        if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 9 and int(raw_page) >= 1:
            page = int(raw_page)
        else:
            errors["page"] = "must be a whole number of at least 1"
    if errors:
        raise Invalid("invalid inbox query", errors)
    return InboxQuery(lane, priority, view, sort, direction, page)


def list_inbox(ctx: ServiceContext, actor: Actor, query: InboxQuery) -> dict[str, Any]:
    """`{items, total, page, pages, per_page}`; a page past the end shows the last one."""
    lanes = inbox_lanes(actor)
    if not lanes:
        raise Forbidden("only users with a lane have an inbox")
    if query.lane is not None and query.lane not in lanes:
        raise Invalid("invalid inbox query", {"lane": "is not one of your lanes"})
    conditions = _conditions(actor, query, lanes)
    now = ctx.now()
    with ctx.db.read() as session:
        total = session.scalar(
            select(func.count(UserTaskRow.id))
            .join(Incident, Incident.id == UserTaskRow.incident_id)
            .where(*conditions)
        )
        total = int(total or 0)
        pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        page = min(query.page, pages)
        rows = session.execute(
            select(UserTaskRow, Incident, User.username)
            .join(Incident, Incident.id == UserTaskRow.incident_id)
            .outerjoin(User, User.id == UserTaskRow.claimed_by)
            .where(*conditions)
            .order_by(*_order_keys(query))
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        items = [_item(row, incident, claimant, now) for row, incident, claimant in rows]
    return {"items": items, "total": total, "page": page, "pages": pages, "per_page": PAGE_SIZE}


def _conditions(actor: Actor, query: InboxQuery, lanes: list[str]) -> list[ColumnElement[bool]]:
    conditions = [
        UserTaskRow.state == "ready",
        UserTaskRow.lane.in_(lanes),
        *task_conditions(actor),
    ]
    if query.lane is not None:
        conditions.append(UserTaskRow.lane == query.lane)
    if query.priority is not None:
        conditions.append(Incident.priority == query.priority)
    if query.view == "mine":
        conditions.append(UserTaskRow.claimed_by == actor.id)
    return conditions


def _order_keys(query: InboxQuery) -> list[Any]:
    descending = query.direction == "desc"
    keys: list[Any]
    if query.sort == "number":
        keys = [Incident.id.desc() if descending else Incident.id.asc()]
    elif query.sort == "age":
        # Youngest first when ascending (the smallest age).
        keys = [UserTaskRow.created_at.asc() if descending else UserTaskRow.created_at.desc()]
    else:
        column = Incident.resolution_due if query.sort == "due" else Incident.priority
        # Rows without a value come last either way (SQLite and PostgreSQL disagree
        # on where NULLs sort by default).
        keys = [
            case((column.is_(None), 1), else_=0),
            column.desc() if descending else column.asc(),
        ]
    return [*keys, UserTaskRow.created_at.asc(), UserTaskRow.id.asc()]


def _item(row: UserTaskRow, incident: Incident, claimant: str | None, now: Any) -> dict[str, Any]:
    due = incident.resolution_due
    return {
        "id": row.id,
        "name": row.name,
        "label": row.label,
        "lane": row.lane,
        "incident_id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "priority": incident.priority,
        "major": incident.major,
        "status": incident.status,
        "suspended": incident.status == "suspended",
        "claimed_by": claimant,
        "created_at": iso(row.created_at),
        "resolution_due": iso(due),
        "overdue": due is not None and incident.status != "suspended" and due < now,
    }


def task_labels(ctx: ServiceContext, actor: Actor, incident_id: int) -> dict[str, str]:
    """BPMN task id → label for every user task the incident has had (for its history)."""
    with ctx.db.read() as session:
        load_visible(session, actor, incident_id)
        return labels_in_session(session, incident_id)
