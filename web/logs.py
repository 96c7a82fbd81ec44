"""Logging for `itsm serve` and `itsm worker`, set up once by `configure_logging`.

Every line carries the id of what it was written for: the request's X-Request-ID
(web.ops) or the worker pass (`worker-…`); lines written outside both have none.
`ITSM_LOG_FORMAT` is `text` (the default: time, level, [id], logger, message) or
`json` (one object per line: time in ISO 8601 UTC, level, logger, message,
request_id, and exc_info / stack_info when present); `ITSM_LOG_LEVEL` is a level
name (default INFO).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from engine.services.telemetry import correlation

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


class LogConfigError(ValueError):
    """ITSM_LOG_FORMAT or ITSM_LOG_LEVEL holds a value we cannot use."""


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the current request's or worker pass's id) to each record.

    Installed on the handler, not a logger: a logger's filters skip the records
    its children pass up, a handler's see them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = correlation.current_id()
        if current is not None:
            record.request_id = current
        return True


# A signed caller link's token opens an incident (web.ui.caller_link): no log line keeps
# it, whoever writes the path (a development server's access line, an error message).
CALLER_LINK_TOKEN = re.compile(r"(/c/)(?!incident(?:[/?#\s\"']|$))[^\s/?#\"']+")


def redact_caller_links(text: str) -> str:
    return CALLER_LINK_TOKEN.sub(r"\1[redacted]", text)


class RedactCallerLinks(logging.Filter):
    """Replaces the token of every `/c/<token>` path in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_caller_links(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines inside messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def make_handler(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format` lines with the id."""
    if log_format not in FORMATS:
        expected = ", ".join(FORMATS)
        raise LogConfigError(f"ITSM_LOG_FORMAT={log_format!r}: expected one of {expected}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactCallerLinks())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"}))
    return handler


def configure_logging(env: Mapping[str, str] | None = None) -> None:
    """Replace the root logger's handlers with one from ITSM_LOG_FORMAT at ITSM_LOG_LEVEL."""
    env = os.environ if env is None else env
    log_format = env.get("ITSM_LOG_FORMAT", "").strip().lower() or "text"
    raw_level = env.get("ITSM_LOG_LEVEL", "")
    level = raw_level.strip().upper() or "INFO"
    if level not in LEVELS:
        raise LogConfigError(f"ITSM_LOG_LEVEL={raw_level!r}: expected one of {', '.join(LEVELS)}")
    handler = make_handler(log_format)  # checks the format
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
