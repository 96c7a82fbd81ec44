"""The desk's "take a call" helpers: look up who is calling (username, name or
address) before reporting for them; the report page then shows the chosen caller's
open incidents as possible duplicates (web.ui.incidents.report)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Invalid
from engine.services.people.profiles import SEARCH_MIN, search_callers
from web.ui.session import actor, roles_required, services

callers_blueprint = Blueprint("callers", __name__)
PAGE = 20


@callers_blueprint.get("/incidents/callers")
@roles_required(*STAFF_ROLES)
def search() -> str | tuple[str, int]:
    query = request.args.get("q", "")
    offset = request.args.get("offset", "0")
    result: dict[str, Any] = {"items": [], "total": 0}
    errors: dict[str, str] = {}
    if query.strip():
        try:
            result = search_callers(
                services(), actor(), {"q": query, "limit": str(PAGE), "offset": offset}
            )
        except Invalid as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors = {
                name: (
                    _("Enter at least %(count)s characters.", count=SEARCH_MIN)
                    if name == "q"
                    else _("Not a valid page.")
                )
                for name in details
            }
    html = render_template(
        "incidents/callers.html",
        query=query,
        result=result,
        errors=errors,
        offset=int(offset) if offset.isdigit() else 0,
        page_size=PAGE,
    )
    return (html, 422) if errors else html
