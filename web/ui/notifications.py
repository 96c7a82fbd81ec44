"""The incident page's list of mails (staff): a template global the partial
`incidents/_notifications.html` calls, so the shared incident view stays as it is."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from engine.domain.paging import MAX_LIMIT, Page
from engine.domain.roles import STAFF_ROLES
from engine.services.notify import mail_log
from web.ui.session import actor, services

notifications_blueprint = Blueprint("notifications_ui", __name__)


@notifications_blueprint.app_template_global("incident_mails")
def incident_mails(incident_id: int) -> list[dict[str, Any]] | None:
    """The incident's newest mails for staff, oldest first; None for anyone else."""
    me = actor()
    if not me.has_any(STAFF_ROLES):
        return None
    listed = mail_log.incident_notifications(services(), me, incident_id, Page(MAX_LIMIT, 0))
    return listed.items
