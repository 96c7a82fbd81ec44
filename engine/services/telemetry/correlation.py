"""The id that ties log lines to what they were written for: the request being
answered (web.ops sets it from X-Request-ID) or the worker's current pass.

A context variable, so each waitress thread (and the worker thread) has its own."""

from __future__ import annotations

from contextvars import ContextVar, Token

_current: ContextVar[str | None] = ContextVar("itsm_correlation_id", default=None)


def current_id() -> str | None:
    """The id of the request or worker pass this thread is working for, if any."""
    return _current.get()


def bind(correlation_id: str | None) -> Token[str | None]:
    """Make `correlation_id` the current one; give the token back to `unbind`."""
    return _current.set(correlation_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)
