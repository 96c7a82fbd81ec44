"""The administration events page: who changed users, roles, tokens, SLA
policies, calendars and process definitions, newest first (administrators)."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.services.audit import admin_events
from web.ui.session import actor, roles_required, services

audit_blueprint = Blueprint("audit", __name__)

PAGE_SIZE = 25
MAX_PAGE = 10**6
EVENT_LABELS = {
    admin_events.USER_CREATED: _l("User created"),
    admin_events.USER_ROLES_CHANGED: _l("Roles changed"),
    admin_events.USER_ACTIVATED: _l("User activated"),
    admin_events.USER_DEACTIVATED: _l("User deactivated"),
    admin_events.USER_PROFILE_CHANGED: _l("E-mail or language changed"),
    admin_events.PASSWORD_RESET: _l("Password reset"),
    admin_events.PASSWORD_CHANGED: _l("Password changed"),
    admin_events.TOKEN_ISSUED: _l("API token issued"),
    admin_events.TOKENS_REVOKED: _l("API tokens revoked"),
    admin_events.API_KEY_ISSUED: _l("API key issued"),
    admin_events.API_KEY_REVOKED: _l("API key revoked"),
    admin_events.VENDOR_ORG_CREATED: _l("Vendor organisation created"),
    admin_events.VENDOR_ORG_CHANGED: _l("Vendor moved to another organisation"),
    admin_events.SLA_POLICY_CHANGED: _l("SLA policy changed"),
    admin_events.CALENDAR_CREATED: _l("Business calendar created"),
    admin_events.CALENDAR_CHANGED: _l("Business calendar changed"),
    admin_events.CALENDAR_DELETED: _l("Business calendar deleted"),
    admin_events.PROCESS_DEPLOYED: _l("Process version deployed"),
    admin_events.DRAFT_CREATED: _l("Process draft created"),
    admin_events.DRAFT_SAVED: _l("Process draft saved"),
    admin_events.DRAFT_DELETED: _l("Process draft deleted"),
    admin_events.DRAFT_DEPLOYED: _l("Process draft deployed"),
    admin_events.WEBHOOK_CREATED: _l("Webhook registered"),
    admin_events.WEBHOOK_DELETED: _l("Webhook deleted"),
    admin_events.ATTACHMENT_UPLOADED: _l("Attachment uploaded"),
}


def event_label(type_: str) -> str:
    label = EVENT_LABELS.get(type_)
    return str(label) if label is not None else type_


def shown_value(value: Any) -> str:
    """Scalars as they are; lists and objects as compact JSON (a calendar's hours)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


@audit_blueprint.get("/admin/audit")
@roles_required("admin")
def events() -> str | tuple[str, int]:
    raw = request.args.get("page", "")
    page, error = 1, None
    if raw:
        if raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= MAX_PAGE:
            page = int(raw)
        else:
            error = _("The page must be a whole number from 1 to %(n)d.", n=MAX_PAGE)
    found = admin_events.admin_event_page(
        services(), actor(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    if page > pages:  # past the end: show the last page
        page = pages
        found = admin_events.admin_event_page(
            services(), actor(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    html = render_template(
        "admin/audit.html",
        events=found.items,
        total=found.total,
        page=page,
        pages=pages,
        error=error,
        event_label=event_label,
        shown_value=shown_value,
    )
    return (html, 422) if error else html
