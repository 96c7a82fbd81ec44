"""Due moments counted in working days (the reporter's answers, contract Part 2 *(ours)*).

"Within 5 working days of resolved" is a number of days, not of working hours, so it is
not an SLA target: on a business calendar the n-th due moment is the end of the working
hours of the n-th working day after the start's own local date (resolved on Wednesday at
10:00 with Monday to Friday working: due on the next Wednesday when work ends). A working
day is a local date with working hours (weekly hours, not a holiday or a day off, or a
make-up working day), so a weekend or a holiday does not count. A calendar without working
days of its own (24×7) counts every day: the n-th due moment is n × 24 hours later.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.domain.calendars import MAX_SEARCH_DAYS, BusinessCalendar
from engine.domain.sla import WorkCalendar

_DAY = timedelta(days=1)


def working_day_ends(calendar: WorkCalendar, start: datetime, count: int) -> list[datetime]:
    """The first `count` due moments after `start` (aware, in UTC): element n - 1 is the
    end of the n-th working day after start's local date. Raises ValueError when the
    calendar has fewer working days within MAX_SEARCH_DAYS of start."""
    if start.tzinfo is None:
        raise ValueError("start must carry a time zone")
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if not isinstance(calendar, BusinessCalendar):
        begin = start.astimezone(UTC)
        return [begin + n * _DAY for n in range(1, count + 1)]
    zone = ZoneInfo(calendar.timezone)
    day = start.astimezone(zone).date()
    ends: list[datetime] = []
    for _ in range(MAX_SEARCH_DAYS):
        if len(ends) == count:
            return ends
        day += _DAY
        end = _end_of_work(calendar, zone, day)
        if end is not None:
            ends.append(end)
    if len(ends) == count:
        return ends
    raise ValueError(
        f"calendar {calendar.name!r} has fewer than {count} working days "
        f"within {MAX_SEARCH_DAYS} days of {start.isoformat()}"
    )


def _end_of_work(calendar: BusinessCalendar, zone: ZoneInfo, day: date) -> datetime | None:
    periods = calendar.working_hours(day)
    if not periods:
        return None
    local_end = datetime.combine(day, time(0)) + max(p.end_offset for p in periods)
    return local_end.replace(tzinfo=zone).astimezone(UTC)


# A suspension that has not ended yet (its end is unknown).
Suspension = tuple[datetime, datetime | None]


def due_after_suspensions(
    calendar: WorkCalendar,
    start: datetime,
    days: int,
    suspensions: list[Suspension],
) -> datetime | None:
    """The end of `days` working days after `start` when suspended time does not count;
    None while the incident is still suspended (the due moment is not known yet).

    Working days whose end passed before a suspension began count; after a resumption the
    counting goes on from the days after the resumption's local date, so a working day
    that was partly suspended does not count (in the reporter's favour)."""
    remaining = days
    cursor = start
    for began, ended in sorted(suspensions, key=lambda pair: pair[0]):
        if ended is not None and ended <= cursor:
            continue  # over before the counting started
        began = max(began, cursor)
        passed = [end for end in working_day_ends(calendar, cursor, remaining) if end <= began]
        if len(passed) >= remaining:
            return passed[remaining - 1]  # due before this suspension began
        remaining -= len(passed)
        if ended is None:
            return None
        cursor = ended
    return working_day_ends(calendar, cursor, remaining)[-1]
