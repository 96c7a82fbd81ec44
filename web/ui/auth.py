"""Sign in, sign out, change one's password, choose a language."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_required, logout_user
from werkzeug.wrappers import Response

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Invalid, Unauthorized
from engine.services.people import users
from web.redirects import safe_redirect_target
from web.signin_limits import Refused, client_address, current_limits
from web.ui import passwords
from web.ui.session import actor, services, start_session

auth_blueprint = Blueprint("auth", __name__)


def home_for_roles(roles: frozenset[str]) -> str:
    if roles & (STAFF_ROLES | {"vendor"}) - {"admin", "designer"}:
        return url_for("tasks.inbox")
    if "admin" in roles:
        return url_for("admin.users")
    return url_for("incidents.index")


@auth_blueprint.get("/")
@login_required
def home() -> Response:
    return redirect(home_for_roles(actor().roles))


@auth_blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    if request.method == "GET":
        return render_template("login.html", username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    limits, address = current_limits(), client_address()
    refused = limits.attempt(username, address)
    if refused:
        _flash_too_many(refused)
        return render_template("login.html", username=username), 429, _retry_after(refused)
    try:
        signed_in = users.sign_in_account(services(), username, password)
    except Unauthorized:
        limits.failed(username, address)
        flash(_("Wrong username or password."), "error")
        return render_template("login.html", username=username), 401
    limits.succeeded(username, address)
    start_session(signed_in)
    if signed_in.must_change_password:
        flash(_("Your password was reset. Choose a new one to continue."), "info")
        return redirect(url_for("auth.change_password"))
    return redirect(
        safe_redirect_target(request.args.get("next"), home_for_roles(signed_in.actor.roles))
    )


def _flash_too_many(refused: Refused) -> None:
    flash(
        _("Too many attempts. Try again in %(seconds)d seconds.", seconds=refused.retry_after),
        "error",
    )


def _retry_after(refused: Refused) -> dict[str, str]:
    return {"Retry-After": str(refused.retry_after)}


@auth_blueprint.post("/logout")
@login_required
def logout() -> Response:
    # A new session version: a copy of this cookie (or any other) no longer signs in.
    users.sign_out(services(), actor())
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


PasswordPage = str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]


@auth_blueprint.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> PasswordPage:
    """Needs the current password; ends every other session and revokes API tokens."""
    if request.method == "GET":
        return _password_page()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        errors = {"confirm_password": _("The two new passwords differ.")}
        return _password_page(errors, 422)
    me = actor()
    limits, address = current_limits(), client_address()
    refused = limits.attempt(me.username, address)
    if refused:
        _flash_too_many(refused)
        page = _password_page(status=429)
        return page[0], 429, _retry_after(refused)
    try:
        changed = users.change_password(services(), me, current, new)
    except users.WrongPassword:
        limits.failed(me.username, address)
        return _password_page({"current_password": _("This is not your current password.")}, 422)
    except Invalid as exc:
        limits.succeeded(me.username, address)  # the current password was right
        details = exc.details if isinstance(exc.details, dict) else {}
        message = str(details.get("new_password", _("Please check the values.")))
        return _password_page({"new_password": passwords.translated(message)}, 422)
    limits.succeeded(me.username, address)
    start_session(changed.account)
    flash(_("Password changed. Your other sessions and API tokens were ended."), "success")
    return redirect(home_for_roles(changed.account.actor.roles))


def _password_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    hint = passwords.policy_hint()
    return render_template("auth/password.html", errors=errors or {}, hint=hint), status


@auth_blueprint.post("/language")
@login_required
def language() -> Response:
    try:
        users.set_locale(services(), actor(), request.form.get("locale", ""))
    except Invalid:
        flash(_("Unknown language."), "error")
    return redirect(safe_redirect_target(request.form.get("next"), url_for("auth.home")))
