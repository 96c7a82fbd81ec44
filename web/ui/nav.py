"""The navigation bar: the areas this user may open, with ready-task counts per lane."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.domain.roles import LANE_ROLES, STAFF_ROLES
from engine.services.tasks.commands import count_ready_by_lane
from web.ui.labels import role_label
from web.ui.session import actor, services


@dataclass(frozen=True)
class LaneCount:
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool
    count: int | None = None
    lanes: list[LaneCount] = field(default_factory=list)


def nav_items() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    me = actor()
    items = []
    my_lanes = sorted(me.roles & (LANE_ROLES - {"reporter"}))
    if my_lanes:
        counts = count_ready_by_lane(services(), me)
        lanes = [
            LaneCount(role_label(lane), counts.get(lane, 0), url_for("tasks.inbox", lane=lane))
            for lane in my_lanes
        ]
        items.append(
            NavItem(
                _("Inbox"),
                url_for("tasks.inbox"),
                request.blueprint == "tasks",
                sum(counts.values()),
                lanes if len(lanes) > 1 else [],
            )
        )
    label = _("Incidents") if me.roles & STAFF_ROLES else _("My incidents")
    items.append(
        NavItem(
            label,
            url_for("incidents.index"),
            request.endpoint in ("incidents.index", "incidents.show"),
        )
    )
    items.append(
        NavItem(
            _("Report an incident"),
            url_for("incidents.report"),
            request.endpoint == "incidents.report",
        )
    )
    if "incident_manager" in me.roles:
        items.append(
            NavItem(
                _("SLA policies"),
                url_for("sla.policies"),
                request.blueprint in ("sla", "calendars"),
            )
        )
    if me.has_any({"designer", "incident_manager"}):
        items.append(
            NavItem(_("Process"), url_for("process.index"), request.blueprint == "process")
        )
    if "admin" in me.roles:
        items.append(NavItem(_("Users"), url_for("admin.users"), request.blueprint == "admin"))
        items.append(
            NavItem(_("Audit trail"), url_for("audit.events"), request.blueprint == "audit")
        )
        items.append(
            NavItem(_("API keys"), url_for("api_keys.index"), request.blueprint == "api_keys")
        )
        items.append(
            NavItem(_("Webhooks"), url_for("webhooks.index"), request.blueprint == "webhooks")
        )
    return items


def register_nav(app: Flask) -> None:
    app.add_template_global(nav_items, "nav_items")
