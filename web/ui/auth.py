"""Sign in, sign out, choose a language."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Invalid, Unauthorized
from engine.services.people import users
from web.redirects import safe_redirect_target
from web.ui.session import SessionUser, actor, services

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
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        return render_template("login.html", username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        signed_in = users.sign_in(services(), username, password)
    except Unauthorized:
        flash(_("Wrong username or password."), "error")
        return render_template("login.html", username=username), 401
    login_user(SessionUser(signed_in))
    return redirect(
        safe_redirect_target(request.args.get("next"), home_for_roles(signed_in.roles))
    )


@auth_blueprint.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@auth_blueprint.post("/language")
@login_required
def language() -> Response:
    try:
        users.set_locale(services(), actor(), request.form.get("locale", ""))
    except Invalid:
        flash(_("Unknown language."), "error")
    return redirect(safe_redirect_target(request.form.get("next"), url_for("auth.home")))
