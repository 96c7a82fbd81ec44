"""The navigation bar: the areas this user may open, with task counts."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.domain.roles import LANE_ROLES, STAFF_ROLES
from engine.services.tasks import count_ready_by_lane
from web.ui.session import actor, services


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool
    count: int | None = None


def nav_items() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    me = actor()
    wanted: list[tuple[str, str, int | None]] = []
    if me.roles & (LANE_ROLES - {"reporter"}):
        counts = count_ready_by_lane(services(), me)
        wanted.append(("tasks.inbox", _("Inbox"), sum(counts.values())))
    wanted.append(("incidents.index", _("Incidents") if me.roles & STAFF_ROLES else
                   _("My incidents"), None))
    wanted.append(("incidents.report", _("Report an incident"), None))
    if "admin" in me.roles:
        wanted.append(("admin.users", _("Users"), None))
    items = []
    for endpoint, label, count in wanted:
        if endpoint not in current_app.view_functions:
            continue
        area = endpoint.split(".")[0]
        items.append(
            NavItem(label, url_for(endpoint), request.blueprint == area and
                    (request.endpoint == endpoint or endpoint.endswith(".index")
                     or endpoint.endswith(".inbox")), count)
        )
    return items


def register_nav(app: Flask) -> None:
    app.add_template_global(nav_items, "nav_items")
