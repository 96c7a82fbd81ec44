"""The browser side: sessions, CSRF, languages, and the page blueprints."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_ui(app: Flask) -> None:
    from web.api import api_blueprint
    from web.ui.admin import admin_blueprint
    from web.ui.api_keys import api_keys_blueprint
    from web.ui.apidocs import apidocs_blueprint
    from web.ui.attachments import attachments_blueprint
    from web.ui.audit import audit_blueprint
    from web.ui.auth import auth_blueprint
    from web.ui.calendars import calendars_blueprint
    from web.ui.caller_link import caller_blueprint
    from web.ui.callers import callers_blueprint
    from web.ui.favicon import favicon_blueprint
    from web.ui.filters import register_filters
    from web.ui.i18n import init_i18n
    from web.ui.incidents import incidents_blueprint
    from web.ui.nav import register_nav
    from web.ui.notifications import notifications_blueprint
    from web.ui.preferences import preferences_blueprint
    from web.ui.process import process_blueprint
    from web.ui.record_edits import record_edits_blueprint
    from web.ui.session import init_login
    from web.ui.sla import sla_blueprint
    from web.ui.tasks import tasks_blueprint
    from web.ui.webhooks import webhooks_blueprint

    csrf.init_app(app)
    # The JSON API authenticates with bearer tokens and never reads the cookie.
    csrf.exempt(api_blueprint)
    init_login(app)
    init_i18n(app)
    register_filters(app)
    register_nav(app)
    for blueprint in (
        auth_blueprint,
        tasks_blueprint,
        incidents_blueprint,
        notifications_blueprint,
        callers_blueprint,
        record_edits_blueprint,
        preferences_blueprint,
        admin_blueprint,
        audit_blueprint,
        api_keys_blueprint,
        webhooks_blueprint,
        sla_blueprint,
        calendars_blueprint,
        process_blueprint,
        apidocs_blueprint,
        attachments_blueprint,
        caller_blueprint,
        favicon_blueprint,
    ):
        app.register_blueprint(blueprint)
