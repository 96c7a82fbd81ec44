"""Bounds on what a process definition may say, shared by the lint and the runtime.

A deployed diagram is attacker-controlled input twice over: its literal text (checked by the
lint at deploy time) and the values its expressions compute (checked here at run time,
before SpiffWorkflow sees them). Both use the functions of this module, so a timer the
lint accepts is exactly a timer the runtime accepts.

Timers: SpiffWorkflow expands a duration month by month (`get_timedelta_from_start`
loops once per month: "P99999999Y" is ~10^9 iterations in the request thread) and then
adds it to now, and converts dates to UTC: "P100000Y", "PT99999999999999H" or a date in
year 1 or 9999 overflow. `timer_value_problem` refuses all of that with a message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# --- timers -------------------------------------------------------------------------------------

# Ten years, measured with the longest calendar (a month of 31 days), so that every way of
# writing ten years (P10Y, P120M, P3650D, PT87600H) is allowed whatever the start date.
# Real timers are SLA reminders of hours to weeks; ten years is far beyond any of them,
# bounds SpiffWorkflow's month-by-month expansion to ~120 steps and keeps now + duration
# far from the end of the datetime range (year 9999).
MAX_TIMER_MONTHS = 10 * 12
MAX_TIMER_DURATION = timedelta(days=MAX_TIMER_MONTHS * 31)
_LONGEST_DAYS = {"years": 12 * 31, "months": 31, "weeks": 7, "days": 1}

# Timer dates must lie between the Unix epoch and 2200 (UTC). Earlier dates are surely
# mistakes and fire at once; 2200 is beyond any business need. Both are far enough from
# year 1 and 9999 that converting any time zone to UTC cannot overflow.
EARLIEST_TIMER_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMER_DATE = datetime(2200, 1, 1, tzinfo=UTC)

# The longest sensible ISO value ("2025-01-31T17:00:00.000000+05:30" is 32 characters); a
# cap keeps int() and the regular expressions below cheap on hostile strings.
MAX_TIMER_VALUE_CHARS = 64

TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")
CYCLES_UNSUPPORTED = "timer cycles are out of scope; use timeDuration or timeDate"

# ISO 8601 durations as SpiffWorkflow parses them: weeks stand alone, "T" needs a time part,
# and only seconds may have a fraction (the engine accepts a fraction only in the last part).
_DURATION = re.compile(
    r"P(?:(?P<date>(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?)"
    r"|(?P<weeks_part>(?P<weeks>\d+)W))"
    r"(?:T(?P<time>(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?))?"
)


def is_iso_duration(value: str) -> bool:
    """An ISO 8601 duration SpiffWorkflow reads the way it is written."""
    match = _DURATION.fullmatch(value)
    if match is None or match.group("time") == "":
        return False  # "P1DT": a T with nothing after it
    return any(match.group(part) for part in ("date", "weeks_part", "time"))


def _duration_problem(value: str) -> str | None:
    if not is_iso_duration(value):
        return f"timeDuration {value!r} is not an ISO 8601 duration such as 'PT4H' or 'P1D'"
    match = _DURATION.fullmatch(value)
    assert match is not None
    parts = {name: match.group(name) or "0" for name in _DURATION.groupindex}
    # Whole numbers of at most 64 digits: exact integer arithmetic, no overflow.
    months = int(parts["years"]) * 12 + int(parts["months"])
    days = sum(int(parts[name]) * factor for name, factor in _LONGEST_DAYS.items())
    whole = days * 86400 + int(parts["hours"]) * 3600 + int(parts["minutes"]) * 60
    seconds = whole + float(parts["seconds"])
    if months > MAX_TIMER_MONTHS or seconds > MAX_TIMER_DURATION.total_seconds():
        return (
            f"timeDuration {value!r} is too long: a timer may wait at most "
            f"{MAX_TIMER_DURATION.days} days (10 years, counting 31 days a month)"
        )
    return None


def _date_problem(value: str) -> str | None:
    example = "'2025-01-31T17:00:00+00:00'"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return (
            f"timeDate {value!r} is not an ISO 8601 date-time with a time zone, such as {example}"
        )
    if "W" in value.upper():
        # Week dates take a different, fragile path in the engine.
        return f"timeDate {value!r} is a week date; write a calendar date such as {example}"
    # The year test first: converting year 1 or 9999 to UTC may itself overflow.
    in_range = EARLIEST_TIMER_DATE.year - 1 <= moment.year <= LATEST_TIMER_DATE.year
    if not in_range or not EARLIEST_TIMER_DATE <= moment.astimezone(UTC) <= LATEST_TIMER_DATE:
        return (
            f"timeDate {value!r} must lie between {EARLIEST_TIMER_DATE:%Y-%m-%d} and "
            f"{LATEST_TIMER_DATE:%Y-%m-%d} (UTC)"
        )
    return None


def timer_value_problem(kind: str, value: object) -> str | None:
    """Why `value` is no acceptable value of a timer of this kind (`TIMER_KINDS`), or None.

    Used on literal timers by the lint and on every evaluated timer expression by the
    sandboxed script engine, before SpiffWorkflow parses or expands the value.
    """
    if kind == "timeCycle":
        return CYCLES_UNSUPPORTED
    if not isinstance(value, str):
        return f"{kind} must evaluate to a string, got {type(value).__name__}"
    if len(value) > MAX_TIMER_VALUE_CHARS:
        return f"{kind} value is longer than {MAX_TIMER_VALUE_CHARS} characters"
    if kind == "timeDuration":
        return _duration_problem(value)
    if kind == "timeDate":
        return _date_problem(value)
    raise ValueError(f"unknown timer kind {kind!r}")
