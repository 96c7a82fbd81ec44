"""Browser sessions (Flask-Login) on top of the same users as the API.

A session's id is `user id:session version`: bumping the user's version (sign-out,
password change or reset, deactivation) makes every copy of an older cookie anonymous.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user
from werkzeug.wrappers import Response

from engine.services.context import Actor, ServiceContext
from engine.services.people.users import Account, account_by_id

login_manager = LoginManager()
F = TypeVar("F", bound=Callable[..., Any])
# What a user who must change their password may still open.
PASSWORD_CHANGE_ENDPOINTS = frozenset(
    {"auth.change_password", "auth.login", "auth.logout", "auth.language", "static"}
)


class SessionUser(UserMixin):  # type: ignore[misc]
    def __init__(self, actor: Actor, must_change_password: bool = False) -> None:
        self.actor = actor
        self.must_change_password = must_change_password

    def get_id(self) -> str:
        return f"{self.actor.id}:{self.actor.session_version}"


def services() -> ServiceContext:
    return current_app.extensions["itsm"]  # type: ignore[no-any-return]


def start_session(account: Account) -> None:
    """A new session: nothing of the anonymous one is kept, its CSRF token included."""
    session.clear()
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    g.pop(field, None)
    login_user(SessionUser(account.actor, account.must_change_password))


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(session_id: str) -> SessionUser | None:
        user_id, _, version = session_id.partition(":")
        try:
            account = account_by_id(services(), int(user_id))
        except ValueError:
            return None
        if account is None or str(account.actor.session_version) != version:
            return None
        return SessionUser(account.actor, account.must_change_password)

    @app.before_request
    def _password_change_first() -> Response | None:
        """After an administrator's reset, no page opens before a new password is set."""
        if request.blueprint == "api" or request.endpoint in PASSWORD_CHANGE_ENDPOINTS:
            return None
        if current_user.is_authenticated and current_user.must_change_password:
            return redirect(url_for("auth.change_password"))
        return None


def actor() -> Actor:
    """The signed-in user (views are protected with `login_required`)."""
    return current_user.actor  # type: ignore[no-any-return]


def roles_required(*roles: str) -> Callable[[F], F]:
    """Checked on the server for every request, whatever the page shows."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not actor().roles & set(roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
