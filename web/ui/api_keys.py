"""The admin's page of API keys: issue one to an integration user, see them, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.domain.roles import INTEGRATION
from engine.services.errors import Invalid
from engine.services.people import api_keys as use_cases
from engine.services.people.users import usernames_with_role
from web.ui.session import actor, roles_required, services

api_keys_blueprint = Blueprint("api_keys", __name__, url_prefix="/admin/api-keys")
PAGE_SIZE = 25


def _messages(details: Any) -> dict[str, str]:
    texts = {
        "username": _("Choose an active integration user."),
        "name": _("Give the key a name of at most 100 characters, unique for this user."),
        "expires_at": _("Enter a date in the future, or leave it empty."),
    }
    if not isinstance(details, dict):
        return {}
    return {str(k): texts.get(str(k), str(v)) for k, v in details.items()}


def _page(*, issued: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    raw_page = request.args.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 7 else 1
    page = max(page, 1)
    listing = use_cases.list_keys(
        services(), actor(), {"limit": str(PAGE_SIZE), "offset": str((page - 1) * PAGE_SIZE)}
    )
    pages = max((listing["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    html = render_template(
        "admin/api_keys.html",
        keys=listing["items"],
        page=min(page, pages),
        pages=pages,
        integration_users=usernames_with_role(services(), INTEGRATION),
        issued=issued,
        errors=errors or {},
        values=values or {"username": "", "name": "", "expires_on": ""},
    )
    return html, status


@api_keys_blueprint.get("")
@roles_required("admin")
def index() -> tuple[str, int]:
    return _page()


@api_keys_blueprint.post("")
@roles_required("admin")
def issue() -> tuple[str, int]:
    values = {
        "username": request.form.get("username", ""),
        "name": request.form.get("name", ""),
        "expires_on": request.form.get("expires_on", "").strip(),
    }
    payload: dict[str, Any] = {"username": values["username"], "name": values["name"]}
    errors: dict[str, str] = {}
    if values["expires_on"]:
        try:
            day = datetime.strptime(values["expires_on"], "%Y-%m-%d").date()
            payload["expires_at"] = datetime.combine(day, time(0, 0), tzinfo=UTC).isoformat()
        except ValueError:
            errors["expires_at"] = _("Enter a date in the future, or leave it empty.")
    try:
        if errors:
            raise Invalid("invalid API key", {})
        issued = use_cases.issue_key(services(), actor(), payload)
    except Invalid as exc:
        return _page(errors={**_messages(exc.details), **errors}, values=values, status=422)
    # Shown on this answer only: the key is not stored and never shown again.
    return _page(issued=issued, status=201)


@api_keys_blueprint.post("/<int:key_id>/revoke")
@roles_required("admin")
def revoke(key_id: int) -> Response:
    revoked = use_cases.revoke_key(services(), actor(), key_id)
    flash(_("The key %(name)s no longer works.", name=revoked["name"]), "success")
    return redirect(url_for("api_keys.index"))
