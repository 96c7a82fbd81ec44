"""Browser sessions (Flask-Login) on top of the same users as the API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user

from engine.services.context import Actor, ServiceContext
from engine.services.people.users import actor_by_id

login_manager = LoginManager()
F = TypeVar("F", bound=Callable[..., Any])


class SessionUser(UserMixin):  # type: ignore[misc]
    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def get_id(self) -> str:
        return f"{self.actor.id}:{self.actor.session_version}"


def services() -> ServiceContext:
    return current_app.extensions["itsm"]  # type: ignore[no-any-return]


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
            actor = actor_by_id(services(), int(user_id))
        except ValueError:
            return None
        if actor is None or str(actor.session_version) != version:
            return None
        return SessionUser(actor)


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
