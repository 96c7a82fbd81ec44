"""Correcting an incident's title, description and contact from its page (the
handling roles; each change is a `field_changed` event the history shows)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.domain.roles import HANDLER_ROLES
from engine.services.errors import Conflict, Invalid
from engine.services.incidents import commands as use_cases
from web.ui.incidents import field_errors, render_show
from web.ui.session import actor, roles_required, services

record_edits_blueprint = Blueprint("record_edits", __name__)
FIELDS = ("title", "description", "contact")


@record_edits_blueprint.post("/incidents/<int:incident_id>/record")
@roles_required(*HANDLER_ROLES)
def edit_record(incident_id: int) -> Response | tuple[str, int]:
    values = {name: request.form.get(name, "") for name in FIELDS}
    try:
        use_cases.patch_incident(services(), actor(), incident_id, values)
    except Invalid as exc:
        page = render_show(incident_id, errors=field_errors(exc), form="edit", values=values)
        return page, 422
    except Conflict:
        flash(_("A closed incident's record is not changed."), "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    flash(_("Record updated."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id))
