"""Every error is mapped here, once: JSON under /api, a page elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from engine.services.errors import ServiceError, TooBusy
from web.redirects import local_target

log = logging.getLogger(__name__)


def _titles() -> dict[int, str]:
    return {
        400: _("Bad request"),
        401: _("Please sign in"),
        403: _("Not allowed"),
        404: _("Not found"),
        409: _("Someone was faster"),
        413: _("Too large"),
        429: _("Too many requests"),
        422: _("Please check the values"),
        500: _("Something went wrong"),
    }


def error_response(status: int, message: str, details: Any = None) -> tuple[Response | str, int]:
    if request.path.startswith("/api/"):
        return jsonify({"error": message, "details": details}), status
    listed = []
    if isinstance(details, dict):
        listed = [f"{k}: {v}" for k, v in details.items()]
    elif isinstance(details, list):
        listed = [str(d.get("message", d)) if isinstance(d, dict) else str(d) for d in details]
    page = render_template(
        "error.html",
        code=status,
        title=_titles().get(status, str(status)),
        message=message,
        details=listed,
        back=_back_link(),
    )
    return page, status


def _back_link() -> str | None:
    """The page the user came from, if it is on this site (the Referer is theirs to forge)."""
    referrer = request.referrer
    if not referrer or referrer == request.url:
        return None
    if referrer.startswith(request.host_url):
        referrer = "/" + referrer[len(request.host_url) :]
    return local_target(referrer)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Any:
        answer = error_response(exc.status, exc.message, exc.details)
        if isinstance(exc, TooBusy):
            return (*answer, {"Retry-After": str(exc.retry_after)})
        return answer

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError) -> tuple[Response | str, int]:
        return error_response(409, "the incident was changed by someone else; reload and retry")

    @app.errorhandler(OperationalError)
    def _busy(exc: OperationalError) -> tuple[Response | str, int]:
        text = str(exc.orig).lower()
        if "locked" in text or "could not serialize" in text:
            return error_response(409, "the incident is busy; retry")
        log.exception("database error")
        return error_response(500, "internal error")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        answer = error_response(exc.code or 500, exc.description or exc.name)
        # Keep what the exception says besides its body (a 405's Allow, a 401's
        # WWW-Authenticate); the body's own Content-Type is ours.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return (*answer, headers) if headers else answer
