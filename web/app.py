"""The Flask application factory."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from engine.persistence.db import Database
from engine.services.context import ServiceContext
from web.api import api_blueprint
from web.errors import register_error_handlers
from web.input_guard import install_input_guard
from web.ops import register_ops
from web.security import register_security_headers
from web.settings import Settings
from web.ui import init_ui


def create_app(settings: Settings | None = None, context: ServiceContext | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Bodies are read by the views themselves so that an oversize BPMN gets 422.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    if context is None:
        context = ServiceContext(
            db=Database(settings.database_url),
            token_ttl=timedelta(hours=settings.token_ttl_hours),
            channels=settings.channels,
        )
    app.extensions["itsm"] = context
    app.extensions["itsm_settings"] = settings
    install_input_guard(app)
    app.register_blueprint(api_blueprint, url_prefix="/api/v1")
    init_ui(app)
    register_error_handlers(app)
    register_security_headers(app, https_only=settings.secure_cookies)
    register_ops(app)
    return app
