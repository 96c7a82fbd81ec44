"""Errors a use case raises; the web layer maps each to one HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    """413: an upload over its limit (`details` names the field)."""

    status = 413


class Invalid(ServiceError):
    """422: `details` maps field id → message, or lists BPMN problems."""

    status = 422


class TooBusy(ServiceError):
    """429: try again after `retry_after` seconds (the web layer sends Retry-After)."""

    status = 429

    def __init__(self, message: str, details: object = None, *, retry_after: int) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after
