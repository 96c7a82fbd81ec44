"""Business calendars: which instants count towards an SLA target.

`BusinessCalendar` implements the `WorkCalendar` protocol of `engine.domain.sla`
(`counted_time` and `instant_after`) for working hours in one IANA time zone, with weekly
working periods (several a day for split shifts), holidays, extra days off and make-up
working days.

What counts is decided instant by instant: an instant counts when the wall clock of the
calendar's zone, at that instant, shows a working time of a working day. All arithmetic is
done on real (UTC) time, so at a DST change

- local times that do not exist (the hour skipped in spring) never count, and
- local times that occur twice (the hour repeated in autumn) count both times,

which is exactly the real elapsed time of the working intervals once converted to UTC.
Work is done interval by interval and day by day, never minute by minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

# A target must be reached within this many days of the start, or instant_after gives up.
MAX_SEARCH_DAYS = 400

WEEKDAY_KEYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)

_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
# Offsets are probed this often; UTC offsets never change twice within it.
_PROBE = timedelta(hours=6)
# Keeps date arithmetic (local = UTC + offset, next day) clear of datetime.max.
_LATEST_UTC = datetime(9999, 12, 30)
# Zone keys that ZoneInfo accepts but whose meaning depends on the host.
_HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules"})

_TIME_RE = re.compile(r"(\d{2}):(\d{2})")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DICT_FIELDS = (
    "name",
    "timezone",
    "weekly",
    "holidays",
    "extra_days_off",
    "makeup_working_days",
    "makeup_hours",
)
_DATE_FIELDS = ("holidays", "extra_days_off", "makeup_working_days")


class CalendarError(ValueError):
    """A calendar (or a part of one) is invalid; `field` names the offending field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[CalendarError], tuple[str, str]]:
        return (type(self), (str(self), self.field))


# --- working periods -------------------------------------------------------------------------


def _format_time(value: time, *, is_end: bool = False) -> str:
    if is_end and value == time(0):
        return "24:00"
    return f"{value.hour:02d}:{value.minute:02d}"


def _check_wall_time(value: object, name: str) -> time:
    if not isinstance(value, time):
        raise CalendarError(f"{name} must be a datetime.time, got {value!r}", field=name)
    if value.tzinfo is not None:
        raise CalendarError(
            f"{name} must be a local wall-clock time without tzinfo, got {value!r}", field=name
        )
    if value.second or value.microsecond:
        raise CalendarError(f"{name} must be a whole minute, got {value.isoformat()}", field=name)
    return value


@dataclass(frozen=True)
class WorkingPeriod:
    """Working time [start, end) on one day, in local wall-clock time.

    Periods never span midnight (split a night shift over two days). An `end` of 00:00
    means midnight at the end of the day ("24:00"), so 00:00-00:00 is the whole day.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        _check_wall_time(self.start, "start")
        _check_wall_time(self.end, "end")
        if self.end_offset <= self.start_offset:
            raise CalendarError(
                f"a working period must end after it starts and cannot span midnight, got {self}",
                field="end",
            )

    @property
    def start_offset(self) -> timedelta:
        """Time from midnight to the start."""
        return timedelta(hours=self.start.hour, minutes=self.start.minute)

    @property
    def end_offset(self) -> timedelta:
        """Time from midnight to the end (a whole day for an end of 00:00)."""
        if self.end == time(0):
            return _DAY
        return timedelta(hours=self.end.hour, minutes=self.end.minute)

    def __str__(self) -> str:
        return f"{_format_time(self.start)}-{_format_time(self.end, is_end=True)}"


_Span = tuple[timedelta, timedelta]  # [start, end) as offsets from local midnight
_DayHours = tuple[_Span, ...]


def _day_hours(
    periods: object, *, field_name: str, where: str
) -> tuple[tuple[WorkingPeriod, ...], _DayHours]:
    """Validate one day's periods; return them and their merged spans."""
    if isinstance(periods, str | bytes) or not isinstance(periods, Iterable):
        raise CalendarError(
            f"{field_name}: the periods of {where} must be a sequence of WorkingPeriod, "
            f"got {periods!r}",
            field=field_name,
        )
    items = tuple(periods)
    for item in items:
        if not isinstance(item, WorkingPeriod):
            raise CalendarError(
                f"{field_name}: the periods of {where} must be WorkingPeriod values, got {item!r}",
                field=field_name,
            )
    spans: list[_Span] = []
    for before, after in zip(items, items[1:], strict=False):
        if after.start_offset < before.start_offset:
            raise CalendarError(
                f"{field_name}: the periods of {where} are out of order ({before} before "
                f"{after}); list them earliest first",
                field=field_name,
            )
        if after.start_offset < before.end_offset:
            raise CalendarError(
                f"{field_name}: the periods of {where} overlap ({before} and {after})",
                field=field_name,
            )
    for item in items:
        if spans and spans[-1][1] == item.start_offset:  # touching periods: one span
            spans[-1] = (spans[-1][0], item.end_offset)
        else:
            spans.append((item.start_offset, item.end_offset))
    return items, tuple(spans)


def _check_dates(value: object, field_name: str) -> frozenset[date]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise CalendarError(f"{field_name} must be a set of dates, got {value!r}", field=field_name)
    days = frozenset(value)
    for day in days:
        # datetime is a subclass of date, but a day off is a whole local day.
        if not isinstance(day, date) or isinstance(day, datetime):
            raise CalendarError(
                f"{field_name} must contain dates only, got {day!r}", field=field_name
            )
    return days


def _load_zone(key: object) -> ZoneInfo:
    if not isinstance(key, str) or not key:
        raise CalendarError(
            f"timezone must be an IANA time zone name such as 'Asia/Taipei', got {key!r}",
            field="timezone",
        )
    if key in _HOST_DEPENDENT_ZONES:
        raise CalendarError(f"timezone {key!r} depends on the server", field="timezone")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise CalendarError(f"unknown time zone {key!r}", field="timezone") from error


def _to_naive_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None)


# --- the calendar ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in one time zone.

    weekly: weekday (0 = Monday .. 6 = Sunday) -> that day's working periods, earliest first,
        not overlapping; missing weekdays have no working time.
    holidays, extra_days_off: local dates without working time.
    makeup_working_days: local dates that are worked even if they are weekend days or
        holidays; they use `makeup_hours` (None: Monday's hours).
    """

    name: str
    timezone: str
    weekly: Mapping[int, tuple[WorkingPeriod, ...]]
    holidays: frozenset[date] = frozenset()
    extra_days_off: frozenset[date] = frozenset()
    makeup_working_days: frozenset[date] = frozenset()
    makeup_hours: tuple[WorkingPeriod, ...] | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: tuple[_DayHours, ...] = field(init=False, repr=False, compare=False)
    _makeup: _DayHours = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise CalendarError(f"name must be a non-empty string, got {self.name!r}", "name")
        zone = _load_zone(self.timezone)
        weekly, week = self._check_weekly(self.weekly)
        makeup_hours: tuple[WorkingPeriod, ...] | None = None
        makeup = week[0]
        if self.makeup_hours is not None:
            makeup_hours, makeup = _day_hours(
                self.makeup_hours, field_name="makeup_hours", where="make-up working days"
            )
        days_off = _check_dates(self.holidays, "holidays")
        extra = _check_dates(self.extra_days_off, "extra_days_off")
        makeup_days = _check_dates(self.makeup_working_days, "makeup_working_days")
        clash = sorted(makeup_days & extra)
        if clash:
            raise CalendarError(
                "makeup_working_days: these days are also extra days off: "
                + ", ".join(day.isoformat() for day in clash),
                field="makeup_working_days",
            )
        if makeup_days and not makeup:
            raise CalendarError(
                "makeup_hours: make-up working days need working hours; set makeup_hours "
                "or give Monday working hours",
                field="makeup_hours",
            )
        for name, value in (
            ("weekly", weekly),
            ("makeup_hours", makeup_hours),
            ("holidays", days_off),
            ("extra_days_off", extra),
            ("makeup_working_days", makeup_days),
            ("_zone", zone),
            ("_week", week),
            ("_makeup", makeup),
        ):
            object.__setattr__(self, name, value)

    @staticmethod
    def _check_weekly(
        value: object,
    ) -> tuple[Mapping[int, tuple[WorkingPeriod, ...]], tuple[_DayHours, ...]]:
        if not isinstance(value, Mapping):
            raise CalendarError(
                f"weekly must map weekdays (0 = Monday .. 6 = Sunday) to working periods, "
                f"got {value!r}",
                field="weekly",
            )
        for key in value:
            if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= 6:
                raise CalendarError(
                    f"weekly: unknown weekday {key!r} (use 0 = Monday .. 6 = Sunday)",
                    field="weekly",
                )
        periods: dict[int, tuple[WorkingPeriod, ...]] = {}
        spans: list[_DayHours] = []
        for weekday in range(7):
            periods[weekday], day = _day_hours(
                value.get(weekday, ()), field_name="weekly", where=WEEKDAY_NAMES[weekday]
            )
            spans.append(day)
        return MappingProxyType(periods), tuple(spans)

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.timezone,
                tuple(self.weekly.items()),
                self.holidays,
                self.extra_days_off,
                self.makeup_working_days,
                self.makeup_hours,
            )
        )

    def __reduce__(self) -> tuple[type[BusinessCalendar], tuple[object, ...]]:
        # The read-only weekly mapping cannot be pickled or deep-copied as it is.
        return (
            type(self),
            (
                self.name,
                self.timezone,
                dict(self.weekly),
                self.holidays,
                self.extra_days_off,
                self.makeup_working_days,
                self.makeup_hours,
            ),
        )

    # --- which time is working time ---------------------------------------------------------

    def working_hours(self, day: date) -> tuple[WorkingPeriod, ...]:
        """The working periods of a local date (empty on a day off)."""
        if day in self.makeup_working_days:
            return self.weekly[0] if self.makeup_hours is None else self.makeup_hours
        if day in self.holidays or day in self.extra_days_off:
            return ()
        return self.weekly[day.weekday()]

    def _spans(self, day: date) -> _DayHours:
        if day in self.makeup_working_days:
            return self._makeup
        if day in self.holidays or day in self.extra_days_off:
            return ()
        return self._week[day.weekday()]

    def _offset(self, utc: datetime) -> timedelta:
        """The zone's UTC offset at a naive UTC instant."""
        offset = self._zone.utcoffset(self._zone.fromutc(utc.replace(tzinfo=self._zone)))
        assert offset is not None
        return offset

    def _transition(self, before: datetime, after: datetime, offset: timedelta) -> datetime:
        """The first instant in (before, after] whose offset is not `offset`."""
        low, high = before, after
        while high - low > _MICROSECOND:
            middle = low + (high - low) // 2
            if self._offset(middle) == offset:
                low = middle
            else:
                high = middle
        return high

    def _fixed_offset_pieces(
        self, start: datetime, until: datetime
    ) -> Iterator[tuple[datetime, datetime, timedelta]]:
        """Split naive UTC [start, until) into pieces of constant UTC offset, in order."""
        offset = self._offset(start)
        while start < until:
            probe = min(start + _PROBE, until)
            probe_offset = self._offset(probe)
            if probe_offset == offset:
                yield start, probe, offset
                start = probe
                continue
            change = self._transition(start, probe, offset)
            yield start, change, offset
            start, offset = change, self._offset(change)

    def _local_work(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals within naive local [start, end), in order."""
        day = start.date()
        while True:
            midnight = datetime.combine(day, time(0))
            if midnight >= end:
                return
            for span_start, span_end in self._spans(day):
                low, high = midnight + span_start, midnight + span_end
                if high <= start:
                    continue
                if low >= end:
                    break
                yield max(low, start), min(high, end)
            day += _DAY

    def _work(self, start: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Counted intervals within naive UTC [start, until), in order, as naive UTC."""
        for piece_start, piece_end, offset in self._fixed_offset_pieces(start, until):
            for low, high in self._local_work(piece_start + offset, piece_end + offset):
                yield low - offset, high - offset

    # --- the WorkCalendar protocol ----------------------------------------------------------

    def counted_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end); zero when end <= start."""
        low = _to_naive_utc(start, "start")
        high = min(_to_naive_utc(end, "end"), _LATEST_UTC)
        total = _ZERO
        if high <= low:
            return total
        for span_start, span_end in self._work(low, high):
            total += span_end - span_start
        return total

    def instant_after(self, start: datetime, counted: timedelta) -> datetime:
        """The earliest instant at which `counted` working time has passed since `start`.

        The result is in start's time zone (with fold=1 in a repeated hour); compare results
        in UTC, since Python never finds a time in a repeated hour equal to a datetime of
        another zone (PEP 495). Raises CalendarError (field "weekly") if the calendar does not
        have that much working time within MAX_SEARCH_DAYS days of start.
        """
        low = _to_naive_utc(start, "start")
        if not isinstance(counted, timedelta):
            raise TypeError(f"counted must be a timedelta, got {counted!r}")
        if counted < _ZERO:
            raise ValueError(f"counted must not be negative, got {counted}")
        if counted == _ZERO:
            return start
        remaining = counted
        until = min(low + timedelta(days=MAX_SEARCH_DAYS), _LATEST_UTC)
        for span_start, span_end in self._work(low, until):
            length = span_end - span_start
            if length >= remaining:
                return (span_start + remaining).replace(tzinfo=UTC).astimezone(start.tzinfo)
            remaining -= length
        raise CalendarError(
            f"calendar {self.name!r} has less than {counted} of working time within "
            f"{MAX_SEARCH_DAYS} days of {start.isoformat()}",
            field="weekly",
        )


# --- Taiwan ----------------------------------------------------------------------------------


def taiwan_public_holidays(years: Iterable[int]) -> frozenset[date]:
    """Taiwan's public holidays (including observed days) from the `holidays` package."""
    chosen = sorted(set(years))
    for year in chosen:
        if isinstance(year, bool) or not isinstance(year, int):
            raise CalendarError(f"years must be whole numbers, got {year!r}", field="holidays")
    return frozenset(holidays_lib.country_holidays("TW", years=chosen).keys())


def standard_taiwan_calendar(
    name: str = "taiwan_business_hours", years: Iterable[int] = range(2024, 2031)
) -> BusinessCalendar:
    """Asia/Taipei, Monday to Friday 09:00-12:00 and 13:00-18:00, Taiwan public
    holidays, and the Saturdays the government declares make-up working days."""
    years = list(years)
    day = (WorkingPeriod(time(9), time(12)), WorkingPeriod(time(13), time(18)))
    return BusinessCalendar(
        name=name,
        timezone="Asia/Taipei",
        weekly={weekday: day for weekday in range(5)},
        holidays=taiwan_public_holidays(years),
        makeup_working_days=taiwan_makeup_working_days(years),
    )


def taiwan_makeup_working_days(years: Iterable[int]) -> frozenset[date]:
    """Weekend days that are working days in Taiwan (they make up for bridge holidays)."""
    calendar = holidays_lib.country_holidays("TW", years=list(years))
    return frozenset(getattr(calendar, "weekend_workdays", ()))


# --- JSON-friendly form ----------------------------------------------------------------------


def _parse_time(value: object, field_name: str, where: str, *, is_end: bool) -> time:
    text = value if isinstance(value, str) else ""
    match = _TIME_RE.fullmatch(text)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if is_end and (hour, minute) == (24, 0):
            return time(0)
        if hour < 24 and minute < 60:
            return time(hour, minute)
    expected = '"HH:MM" (00:00 to 24:00)' if is_end else '"HH:MM" (00:00 to 23:59)'
    which = "end" if is_end else "start"
    raise CalendarError(
        f"{field_name}: {where}: {which} must be {expected}, got {value!r}", field=field_name
    )


def _parse_periods(value: object, field_name: str, where: str) -> tuple[WorkingPeriod, ...]:
    if not isinstance(value, list | tuple):
        raise CalendarError(
            f'{field_name}: {where} must be a list of {{"start": "HH:MM", "end": "HH:MM"}}, '
            f"got {value!r}",
            field=field_name,
        )
    periods = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"start", "end"}:
            raise CalendarError(
                f'{field_name}: {where}: each period must be {{"start": "HH:MM", '
                f'"end": "HH:MM"}}, got {item!r}',
                field=field_name,
            )
        start = _parse_time(item["start"], field_name, where, is_end=False)
        end = _parse_time(item["end"], field_name, where, is_end=True)
        try:
            periods.append(WorkingPeriod(start, end))
        except CalendarError as error:
            raise CalendarError(
                f"{field_name}: {where}: end {item['end']} must be after start "
                f"{item['start']} (periods cannot span midnight)",
                field=field_name,
            ) from error
    return tuple(periods)


def _parse_weekly(value: object) -> dict[int, tuple[WorkingPeriod, ...]]:
    if not isinstance(value, Mapping):
        raise CalendarError(
            f"weekly must be an object keyed by {', '.join(WEEKDAY_KEYS)}, got {value!r}",
            field="weekly",
        )
    weekly = {}
    for key, periods in value.items():
        if key not in WEEKDAY_KEYS:
            raise CalendarError(
                f"weekly: unknown weekday {key!r} (use {', '.join(WEEKDAY_KEYS)})",
                field="weekly",
            )
        weekday = WEEKDAY_KEYS.index(key)
        weekly[weekday] = _parse_periods(periods, "weekly", WEEKDAY_NAMES[weekday])
    return weekly


def _parse_dates(value: object, field_name: str) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise CalendarError(
            f'{field_name} must be a list of "YYYY-MM-DD" dates, got {value!r}',
            field=field_name,
        )
    days = set()
    for item in value:
        try:
            if not isinstance(item, str) or not _DATE_RE.fullmatch(item):
                raise ValueError(item)
            days.add(date.fromisoformat(item))
        except ValueError as error:
            raise CalendarError(
                f'{field_name}: {item!r} is not a valid "YYYY-MM-DD" date', field=field_name
            ) from error
    return frozenset(days)


def calendar_from_dict(data: Mapping[str, object]) -> BusinessCalendar:
    """Build a calendar from its JSON form (see calendar_to_dict), validating every field."""
    if not isinstance(data, Mapping):
        raise CalendarError(f"a calendar must be an object, got {data!r}", field="calendar")
    for key in data:
        if key not in _DICT_FIELDS:
            raise CalendarError(
                f"unknown field {key!r} (expected {', '.join(_DICT_FIELDS)})", field=str(key)
            )
    for required in ("name", "timezone", "weekly"):
        if required not in data:
            raise CalendarError(f"{required} is required", field=required)
    name, timezone = data["name"], data["timezone"]
    if not isinstance(name, str):
        raise CalendarError(f"name must be a string, got {name!r}", field="name")
    if not isinstance(timezone, str):
        raise CalendarError(
            f"timezone must be an IANA time zone name, got {timezone!r}", field="timezone"
        )
    days = {key: _parse_dates(data.get(key, []), key) for key in _DATE_FIELDS}
    raw_makeup_hours = data.get("makeup_hours")
    makeup_hours = (
        None
        if raw_makeup_hours is None
        else _parse_periods(raw_makeup_hours, "makeup_hours", "make-up working days")
    )
    return BusinessCalendar(
        name=name,
        timezone=timezone,
        weekly=_parse_weekly(data["weekly"]),
        holidays=days["holidays"],
        extra_days_off=days["extra_days_off"],
        makeup_working_days=days["makeup_working_days"],
        makeup_hours=makeup_hours,
    )


def _periods_to_list(periods: Iterable[WorkingPeriod]) -> list[dict[str, str]]:
    return [
        {"start": _format_time(period.start), "end": _format_time(period.end, is_end=True)}
        for period in periods
    ]


def calendar_to_dict(cal: BusinessCalendar) -> dict[str, object]:
    """The JSON form: times "HH:MM" (an end of "24:00" is midnight), dates "YYYY-MM-DD",
    weekly keyed by "mon".."sun" (every day present), date lists sorted, and makeup_hours
    null when make-up days use Monday's hours."""
    return {
        "name": cal.name,
        "timezone": cal.timezone,
        "weekly": {
            key: _periods_to_list(cal.weekly[weekday]) for weekday, key in enumerate(WEEKDAY_KEYS)
        },
        "holidays": sorted(day.isoformat() for day in cal.holidays),
        "extra_days_off": sorted(day.isoformat() for day in cal.extra_days_off),
        "makeup_working_days": sorted(day.isoformat() for day in cal.makeup_working_days),
        "makeup_hours": None if cal.makeup_hours is None else _periods_to_list(cal.makeup_hours),
    }
