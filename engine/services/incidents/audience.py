"""What someone outside the desk sees of an incident: one filter for pages and API.

Staff see everything. A caller (the incident's reporter) and a vendor see the
people at work only as their lane role (`service_desk`, `level2`, ..., else
`staff`); suspend and reassign reasons, internal notes, stage events, stage
clocks and the process's internals are left out (contract Part 2, "People").
A caller's history is further narrowed to the steps that are news to them.
One exception, ours: a suspension *awaiting the reporter* keeps its reason,
because it is the question the caller is asked to answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from engine.domain.roles import STAFF_ROLES, shown_role
from engine.persistence.models import Attachment, Incident, User, UserRole, UserTaskRow
from engine.services.context import Actor
from engine.services.sla.clocks import RESPONSE_STOP_TASK, STAGE_ENTERED, STAGE_LEFT, STAGES

SYSTEM = "system"
Kind = Literal["staff", "caller", "vendor"]

# What a caller's history shows; everything else is internal work.
CALLER_EVENT_TYPES = frozenset(
    {
        "created",
        "task_completed",
        "technical_escalation",
        "suspended",
        "resumed",
        "resolved",
        "reopened",
        "closed",
        "note_added",
        "survey_answered",
        "attachment_added",
    }
)
# Of the completed steps, only recording the report is news to the caller.
CALLER_TASKS = frozenset({RESPONSE_STOP_TASK})
# Free text of the people at work: never shown outside the desk.
INTERNAL_FIELDS = frozenset(
    {"reason", "reassign_reason", "reassign_to", "values", "assignee", "vendor_org"}
)
STAGE_EVENTS = frozenset({STAGE_ENTERED, STAGE_LEFT})


@dataclass(frozen=True)
class Audience:
    kind: Kind
    username: str
    vendor_org: str | None = None  # a vendor's organisation

    @property
    def staff(self) -> bool:
        return self.kind == "staff"


def audience_of(actor: Actor, incident: Incident | None = None) -> Audience:
    if actor.has_any(STAFF_ROLES):
        return Audience("staff", actor.username)
    if "vendor" in actor.roles and (incident is None or incident.caller_id != actor.id):
        return Audience("vendor", actor.username, actor.vendor_org)
    return Audience("caller", actor.username)


class Names:
    """Usernames as this audience may see them, looked up once per view."""

    def __init__(
        self,
        session: Session,
        audience: Audience,
        usernames: Iterable[str],
        incident_id: int | None = None,
    ) -> None:
        self.audience = audience
        # The vendor tasks of other organisations on this incident: their events too
        # stay with those organisations.
        self.hidden_tasks: frozenset[str] = frozenset()
        if audience.kind == "vendor" and incident_id is not None:
            self.hidden_tasks = frozenset(
                session.scalars(
                    select(UserTaskRow.id).where(
                        UserTaskRow.incident_id == incident_id,
                        UserTaskRow.lane == "vendor",
                        UserTaskRow.vendor_org.is_distinct_from(audience.vendor_org),
                    )
                )
            )
        self._shown: dict[str, str] = {}
        if audience.staff:
            return
        wanted = {u for u in usernames if u and u not in (SYSTEM, audience.username)}
        roles: dict[str, set[str]] = {u: set() for u in wanted}
        if wanted:
            rows = session.execute(
                select(User.username, UserRole.role)
                .join(UserRole, UserRole.user_id == User.id)
                .where(User.username.in_(sorted(wanted)))
            )
            for username, role in rows:
                roles[username].add(role)
        for username, held in roles.items():
            # A caller known only by address, or another caller, keeps their own name.
            if held & (STAFF_ROLES | {"vendor"}):
                self._shown[username] = shown_role(frozenset(held))

    def __call__(self, username: str | None) -> str | None:
        if username is None:
            return None
        return self._shown.get(username, username)


def names_for(
    session: Session,
    audience: Audience,
    *,
    events: Iterable[dict[str, Any]] = (),
    tasks: Iterable[dict[str, Any]] = (),
    notes: Iterable[dict[str, Any]] = (),
    links: Iterable[dict[str, Any]] = (),
    attachments: Iterable[dict[str, Any]] = (),
    incident_id: int | None = None,
) -> Names:
    usernames = [e.get("actor") for e in events]
    usernames += [a.get("uploaded_by") for a in attachments]
    usernames += [t.get("claimed_by") for t in tasks]
    usernames += [n.get("author") for n in notes]
    usernames += [r.get("creator") for r in links]
    named = [u for u in usernames if isinstance(u, str)]
    return Names(session, audience, named, incident_id)


def shown_events(events: list[dict[str, Any]], names: Names) -> list[dict[str, Any]]:
    kind = names.audience.kind
    if kind == "staff":
        return events
    if kind == "caller":
        return [_caller_event(e, names) for e in events if _caller_sees(e)]
    return [_vendor_event(e, names) for e in events if _vendor_sees(e, names.hidden_tasks)]


def _caller_sees(event: dict[str, Any]) -> bool:
    kind = event["type"]
    if kind not in CALLER_EVENT_TYPES or event.get("internal") or event.get("vendor"):
        return False
    return kind != "task_completed" or event.get("task") in CALLER_TASKS


def _caller_event(event: dict[str, Any], names: Names) -> dict[str, Any]:
    item: dict[str, Any] = {
        "at": event["at"],
        "actor": names(event["actor"]),
        "type": event["type"],
        "mine": event["actor"] == names.audience.username,
    }
    if event.get("task"):
        item["task"] = event["task"]
    if event["type"] == "suspended":
        item["category"] = event.get("category")
        if event.get("category") == "awaiting_reporter":
            item["reason"] = event.get("reason")
    return item


def _vendor_sees(event: dict[str, Any], hidden_tasks: frozenset[str]) -> bool:
    if event.get("internal") or event["type"] in STAGE_EVENTS:
        return False
    if event.get("task_id") in hidden_tasks:
        return False
    return not (event.get("clock") in STAGES or event.get("lane") in STAGES)


def _vendor_event(event: dict[str, Any], names: Names) -> dict[str, Any]:
    item = {k: v for k, v in event.items() if k not in INTERNAL_FIELDS}
    item["actor"] = names(event["actor"])
    return item


def shown_task(task: dict[str, Any], names: Names) -> dict[str, Any]:
    if names.audience.staff:
        return task
    shown = {k: v for k, v in task.items() if k != "vendor_org"}
    return {**shown, "claimed_by": names(task.get("claimed_by"))}


def _sees_task(audience: Audience, task: dict[str, Any]) -> bool:
    """A vendor sees another organisation's vendor task of the same incident not at all."""
    if audience.kind != "vendor" or task.get("lane") != "vendor":
        return True
    return task.get("vendor_org") == audience.vendor_org


def shown_note(note: dict[str, Any], names: Names) -> dict[str, Any]:
    if names.audience.staff:
        return note
    return {**note, "author": names(note.get("author"))}


def attachment_condition(audience: Audience) -> ColumnElement[bool] | None:
    """Which attachments of a visible incident this audience sees, as SQL over
    `Attachment` (None: all). A caller: neither internal nor vendor ones. A vendor: not
    internal ones, and of the vendor ones (staff's and vendors') those not uploaded by
    another organisation's vendor."""
    if audience.staff:
        return None
    if audience.kind == "caller":
        return Attachment.internal.is_(False) & Attachment.vendor.is_(False)
    other_orgs_upload = (
        select(User.id)
        .where(
            User.username == Attachment.uploaded_by,
            User.vendor_org.is_not(None),
            User.vendor_org.is_distinct_from(audience.vendor_org),
        )
        .exists()
    )
    return Attachment.internal.is_(False) & or_(Attachment.vendor.is_(False), ~other_orgs_upload)


def shown_attachment(item: dict[str, Any], names: Names) -> dict[str, Any]:
    if names.audience.staff:
        return item
    return {**item, "uploaded_by": names(item.get("uploaded_by"))}


def _shown_attachments(
    session: Session, audience: Audience, items: list[dict[str, Any]], names: Names
) -> list[dict[str, Any]]:
    condition = attachment_condition(audience)
    if condition is None or not items:
        return items
    wanted = [item["id"] for item in items]
    seen = set(session.scalars(select(Attachment.id).where(Attachment.id.in_(wanted), condition)))
    return [shown_attachment(item, names) for item in items if item["id"] in seen]


def shown_detail(session: Session, audience: Audience, detail: dict[str, Any]) -> dict[str, Any]:
    """An incident as `incident_detail` shapes it, narrowed to what `audience` may see."""
    if audience.staff:
        return detail
    names = names_for(
        session,
        audience,
        events=detail.get("events", ()),
        tasks=detail.get("tasks", ()),
        links=detail.get("links", ()),
        attachments=detail.get("attachments", ()),
        incident_id=detail.get("id"),
    )
    tasks = [shown_task(t, names) for t in detail.get("tasks", ()) if _sees_task(audience, t)]
    links = [{**r, "creator": names(r.get("creator"))} for r in detail.get("links", ())]
    shown = {**detail, "tasks": tasks, "links": links}
    if "attachments" in detail:
        shown["attachments"] = _shown_attachments(session, audience, detail["attachments"], names)
    # An engine error names the process's elements: internals.
    shown["error"] = None
    if "events" in detail:
        shown["events"] = shown_events(detail["events"], names)
    return shown
