"""User administration: create users, change their roles, (de)activate them, reset
their passwords, and keep the vendor organisations and who belongs to which.

Only administrators reach these pages; the check runs on every request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.domain.roles import ALL_ROLES
from engine.services.errors import Conflict, Invalid
from engine.services.people import organisations as organisation_service
from engine.services.people import profiles
from engine.services.people import users as user_service
from web.ui import labels, passwords
from web.ui.preferences import LANGUAGE_NAMES
from web.ui.session import actor, roles_required, services

admin_blueprint = Blueprint("admin", __name__, url_prefix="/admin")

# The order the contract lists the roles in; anything newer goes last.
ROLE_ORDER: list[str] = [r for r in labels.ROLES if r in ALL_ROLES] + sorted(
    ALL_ROLES - set(labels.ROLES)
)
DISPLAY_NAME_MAX = 200  # the column's length

PageResult = str | tuple[str, int]
NEW_USER: dict[str, Any] = {
    "username": "",
    "display_name": "",
    "roles": [],
    "org": "",
    "email": "",
    "language": profiles.LANGUAGES[0],
}


def _translated(field: str, message: object) -> str:
    """The service speaks English; show its field messages in the user's language."""
    text = str(message)
    if field == "username" and text == "no such user":
        return _("There is no such user.")
    if field == "username" and text.startswith("must be"):
        return _("Use 1 to 80 letters, digits, '.', '_' or '-'.")
    if field == "password":
        return passwords.translated(text)
    if field == "roles" and text == "at least one role is required":
        return _("Choose at least one role.")
    if field == "roles" and text.startswith("unknown role"):
        return _("Choose only roles from the list.")
    if field in ("org", "name") and text == organisation_service.NAME_RULE:
        return _(
            "Use 1 to 80 letters (A-Z), digits, '.', '_' or '-', starting with a letter or digit."
        )
    if field == "org" and text == organisation_service.UNKNOWN:
        return _("Choose an organisation from the list.")
    if field == "org" and text == organisation_service.NOT_A_VENDOR:
        return _("Only a vendor user belongs to an organisation.")
    if field == "email" and text == profiles.TAKEN:
        return _("Another user has this address.")
    if field == "email":
        return _("Enter an e-mail address such as name@example.com.")
    if field == "language":
        return _("Choose a language from the list.")
    return text


def _messages(details: Any) -> dict[str, str]:
    if not isinstance(details, dict):
        return {}
    return {str(k): _translated(str(k), v) for k, v in details.items()}


def _page(status: int = 200, **context: Any) -> PageResult:
    page = _page_html(**context)
    return page if status == 200 else (page, status)


def _page_html(**context: Any) -> str:
    return render_template(
        "admin/users.html",
        users=user_service.list_users(services()),
        role_order=ROLE_ORDER,
        me=actor().username,
        new=context.pop("new", NEW_USER),
        new_errors=context.pop("new_errors", {}),
        role_values=context.pop("role_values", {}),
        role_errors=context.pop("role_errors", {}),
        active_errors=context.pop("active_errors", {}),
        reset_errors=context.pop("reset_errors", {}),
        reset=context.pop("reset", None),
        pending=user_service.password_change_pending(services()),
        organisations=organisation_service.list_organisations(services()),
        vendor_orgs=organisation_service.vendor_orgs_by_username(services()),
        org_values=context.pop("org_values", {}),
        org_errors=context.pop("org_errors", {}),
        new_org=context.pop("new_org", ""),
        new_org_errors=context.pop("new_org_errors", {}),
        password_hint=passwords.policy_hint(),
        languages=profiles.LANGUAGES,
        language_names=LANGUAGE_NAMES,
        profile_values=context.pop("profile_values", {}),
        profile_errors=context.pop("profile_errors", {}),
        **context,
    )


def _require_user(username: str) -> None:
    if not user_service.user_exists(services(), username):
        abort(404)


@admin_blueprint.get("/users")
@roles_required("admin")
def users() -> PageResult:
    return _page()


@admin_blueprint.post("/users")
@roles_required("admin")
def create_user() -> PageResult | Response:
    username = request.form.get("username", "").strip()
    display_name = request.form.get("display_name", "").strip()
    password = request.form.get("password", "")
    roles = request.form.getlist("roles")
    org = request.form.get("org", "").strip()
    email = request.form.get("email", "").strip()
    language = request.form.get("language", "") or profiles.LANGUAGES[0]
    # The typed values come back on an error page; the password never does.
    typed = {
        "username": username,
        "display_name": display_name,
        "roles": roles,
        "org": org,
        "email": email,
        "language": language,
    }
    if len(display_name) > DISPLAY_NAME_MAX:
        errors = {"display_name": _("Use at most %(n)d characters.", n=DISPLAY_NAME_MAX)}
        return _page(422, new=typed, new_errors=errors)
    try:
        user_service.create_user(
            services(),
            username,
            password,
            roles,
            display_name,
            vendor_org=org or None,
            by=actor().username,
            email=email or None,
            language=language,
        )
    except Invalid as exc:
        return _page(422, new=typed, new_errors=_messages(exc.details))
    except Conflict as exc:
        if isinstance(exc.details, dict) and "email" in exc.details:
            return _page(409, new=typed, new_errors=_messages(exc.details))
        errors = {"username": _("This username is already taken.")}
        return _page(409, new=typed, new_errors=errors)
    flash(_("User %(username)s created.", username=username), "success")
    return redirect(url_for("admin.users"))


@admin_blueprint.post("/users/<username>/roles")
@roles_required("admin")
def change_roles(username: str) -> PageResult | Response:
    _require_user(username)
    roles = request.form.getlist("roles")
    if username == actor().username and "admin" not in roles:
        # Our decision: nobody locks themself out of this page by accident.
        errors = {username: _("You cannot remove your own administrator role.")}
        return _page(422, role_values={username: roles}, role_errors=errors)
    try:
        user_service.set_roles(services(), username, roles, by=actor().username)
    except Invalid as exc:
        found = _messages(exc.details)
        if "username" in found:
            abort(404)
        message = found.get("roles", _("Please check the values."))
        return _page(422, role_values={username: roles}, role_errors={username: message})
    flash(_("Roles of %(username)s changed.", username=username), "success")
    return redirect(url_for("admin.users"))


@admin_blueprint.post("/users/<username>/profile")
@roles_required("admin")
def change_profile(username: str) -> PageResult | Response:
    """The user's e-mail address (empty: none) and language."""
    _require_user(username)
    typed = {
        "email": request.form.get("email", "").strip(),
        "language": request.form.get("language", ""),
    }
    try:
        profiles.update_profile(
            services(), username, email=typed["email"], language=typed["language"],
            by=actor().username,
        )
    except (Invalid, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        errors = {username: _messages(exc.details)}
        return _page(status, profile_values={username: typed}, profile_errors=errors)
    flash(_("Contact of %(username)s saved.", username=username), "success")
    return redirect(url_for("admin.users"))


@admin_blueprint.post("/users/<username>/active")
@roles_required("admin")
def change_active(username: str) -> PageResult | Response:
    _require_user(username)
    wanted = request.form.get("active", "")
    if wanted not in ("0", "1"):
        abort(400)
    active = wanted == "1"
    if not active and username == actor().username:
        errors = {username: _("You cannot deactivate yourself.")}
        return _page(422, active_errors=errors)
    try:
        user_service.set_active(services(), username, active, by=actor().username)
    except Invalid:
        abort(404)
    if active:
        flash(_("%(username)s can sign in again.", username=username), "success")
    else:
        flash(
            _("%(username)s was deactivated: signed out everywhere, API tokens revoked.",
              username=username),
            "success",
        )
    return redirect(url_for("admin.users"))


@admin_blueprint.post("/users/<username>/password")
@roles_required("admin")
def reset_password(username: str) -> PageResult | tuple[str, int, dict[str, str]]:
    """A temporary password, shown once on this page (never put in a redirect or a
    flash message, which would carry it in the session cookie)."""
    _require_user(username)
    if username == actor().username:
        errors = {username: _("Change your own password on the Change password page.")}
        return _page(422, reset_errors=errors)
    try:
        temporary = user_service.reset_password(services(), actor(), username)
    except Invalid:
        abort(404)
    page = _page_html(reset={"username": username, "password": temporary})
    return page, 200, {"Cache-Control": "no-store"}


@admin_blueprint.post("/users/<username>/org")
@roles_required("admin")
def change_org(username: str) -> PageResult | Response:
    _require_user(username)
    org = request.form.get("org", "").strip()
    try:
        moved_to = organisation_service.set_vendor_org(services(), actor(), username, org)
    except Invalid as exc:
        found = _messages(exc.details)
        if "username" in found:
            abort(404)
        message = found.get("org", _("Please check the values."))
        return _page(422, org_values={username: org}, org_errors={username: message})
    flash(_("%(username)s now works for %(org)s.", username=username, org=moved_to), "success")
    return redirect(url_for("admin.users"))


@admin_blueprint.post("/organisations")
@roles_required("admin")
def create_organisation() -> PageResult | Response:
    name = request.form.get("name", "").strip()
    try:
        organisation_service.create_organisation(services(), actor(), name)
    except Invalid as exc:
        return _page(422, new_org=name, new_org_errors=_messages(exc.details))
    except Conflict:
        errors = {"name": _("This organisation already exists.")}
        return _page(409, new_org=name, new_org_errors=errors)
    flash(_("Vendor organisation %(name)s created.", name=name), "success")
    return redirect(url_for("admin.users"))
