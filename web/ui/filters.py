"""Template filters: times in the user's zone, time left, labels of codes."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask_babel import format_datetime
from flask_babel import gettext as _

from web.redirects import local_target
from web.ui import labels


def local_time(value: datetime | str | None, style: str = "medium") -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, style)


def time_left(due: datetime | str | None, now: datetime | None = None) -> str:
    if due is None or due == "":
        return "—"
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    seconds = int((due - (now or datetime.now(UTC))).total_seconds())
    text = _duration(abs(seconds))
    return text if seconds >= 0 else _("%(time)s overdue", time=text)


def age(since: datetime | str | None, now: datetime | None = None) -> str:
    if since is None or since == "":
        return "—"
    if isinstance(since, str):
        since = datetime.fromisoformat(since)
    return _duration(max(int(((now or datetime.now(UTC)) - since).total_seconds()), 0))


def span(seconds: float | None) -> str:
    """A length of time given in seconds, e.g. "1 d 3 h", "2 h 5 min", "0 min"."""
    if seconds is None:
        return "—"
    return _duration(int(seconds))


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)d min", h=hours, m=minutes)
    return _("%(m)d min", m=minutes)


def register_filters(app: Flask) -> None:
    app.add_template_filter(local_time, "localtime")
    app.add_template_filter(time_left, "timeleft")
    app.add_template_filter(age, "age")
    app.add_template_filter(span, "span")
    # A `next` echoed into a form: only a path on this site (else nothing).
    app.add_template_filter(local_target, "local_path")
    app.add_template_global(labels.clock_label, "clock_label")
    app.add_template_global(labels.clock_state_label, "clock_state_label")
    app.add_template_global(labels.role_label, "role_label")
    app.add_template_filter(labels.role_label, "role_label")
    app.add_template_global(labels.priority_label, "priority_label")
    app.add_template_global(labels.status_label, "status_label")
    app.add_template_global(labels.phase_label, "phase_label")
    app.add_template_global(labels.channel_label, "channel_label")
    app.add_template_global(labels.event_label, "event_label")
    app.add_template_global(labels.sla_calendar_label, "sla_calendar_label")
