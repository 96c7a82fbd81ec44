"""The signed-in user's own preferences: language, and whether to be mailed when a
task they could take becomes ready (the notifier reads `User.notify_task_ready`).
The address itself is the administrator's to set: mail in finds callers by it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from engine.services.errors import Invalid
from engine.services.people import profiles
from engine.services.people import users as user_service
from web.ui.session import actor, services

preferences_blueprint = Blueprint("preferences", __name__)

# Each language in its own words (as the header's language menu shows them).
LANGUAGE_NAMES = {"zh_Hant_TW": "繁體中文", "en": "English"}


@preferences_blueprint.get("/preferences")
@login_required
def show() -> str:
    return render_template(
        "auth/preferences.html",
        profile=profiles.profile_of(services(), actor()),
        languages=profiles.LANGUAGES,
        language_names=LANGUAGE_NAMES,
        errors={},
    )


@preferences_blueprint.post("/preferences")
@login_required
def save() -> Response | tuple[str, int]:
    me = actor()
    language = request.form.get("language", "")
    wanted = request.form.get("notify_task_ready", "") == "1"
    try:
        user_service.set_locale(services(), me, language)
    except Invalid:
        page = render_template(
            "auth/preferences.html",
            profile={**profiles.profile_of(services(), me), "notify_task_ready": wanted},
            languages=profiles.LANGUAGES,
            language_names=LANGUAGE_NAMES,
            errors={"language": _("Choose a language from the list.")},
        )
        return page, 422
    profiles.set_notify_task_ready(services(), me, wanted)
    flash(_("Preferences saved."), "success")
    return redirect(url_for("preferences.show"))
