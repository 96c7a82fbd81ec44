"""Every error becomes one JSON shape, mapped in one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from engine.services.errors import ServiceError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, details: object = None) -> tuple[Response, int]:
    return jsonify({"error": message, "details": details}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[Response, int]:
        return error_response(exc.status, exc.message, exc.details)

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError) -> tuple[Response, int]:
        return error_response(409, "the incident was changed by someone else; reload and retry")

    @app.errorhandler(OperationalError)
    def _busy(exc: OperationalError) -> tuple[Response, int]:
        if "locked" in str(exc.orig).lower() or "could not serialize" in str(exc.orig).lower():
            return error_response(409, "the incident is busy; retry")
        log.exception("database error")
        return error_response(500, "internal error")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        return error_response(exc.code or 500, exc.description or exc.name)
