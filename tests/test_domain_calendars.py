"""Business calendars: working hours, days off, make-up days, DST and their JSON form.

The property test at the end checks both calendar methods against a brute-force oracle that
walks minute by minute and decides from the raw random data alone (via zoneinfo) whether each
minute is working time.
"""

from __future__ import annotations

import copy
import json
import pickle
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    WorkingPeriod,
    calendar_from_dict,
    calendar_to_dict,
    standard_taiwan_calendar,
    taiwan_public_holidays,
)
from engine.domain.sla import ClockEvent, WorkCalendar, clock_state

TAIPEI = ZoneInfo("Asia/Taipei")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

H = timedelta(hours=1)
M = timedelta(minutes=1)


def p(start: str, end: str) -> WorkingPeriod:
    def parse(text: str) -> time:
        return time(0) if text == "24:00" else time.fromisoformat(text)

    return WorkingPeriod(parse(start), parse(end))


NINE_TO_FIVE = (p("09:00", "17:00"),)
ALL_DAY = (p("00:00", "24:00"),)


def office(zone: str, hours: tuple[WorkingPeriod, ...] = NINE_TO_FIVE, **kw: Any):
    return BusinessCalendar("office", zone, {day: hours for day in range(5)}, **kw)


def every_day(zone: str, hours: tuple[WorkingPeriod, ...] = ALL_DAY) -> BusinessCalendar:
    return BusinessCalendar("every_day", zone, {day: hours for day in range(7)})


@pytest.fixture(scope="module")
def taiwan() -> BusinessCalendar:
    return standard_taiwan_calendar()


def tpe(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=TAIPEI)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- working hours ---------------------------------------------------------------------------


def test_is_a_work_calendar(taiwan: BusinessCalendar):
    calendar: WorkCalendar = taiwan
    assert calendar.counted_time(tpe(2026, 3, 2, 9), tpe(2026, 3, 2, 18)) == 8 * H


def test_split_shift_skips_lunch(taiwan: BusinessCalendar):
    monday = tpe(2026, 3, 2, 11, 30)
    assert taiwan.instant_after(monday, 2 * H) == tpe(2026, 3, 2, 14, 30)
    assert taiwan.counted_time(monday, tpe(2026, 3, 2, 14, 30)) == 2 * H
    assert taiwan.counted_time(tpe(2026, 3, 2, 12), tpe(2026, 3, 2, 13)) == timedelta(0)


def test_target_reached_at_lunch_is_the_start_of_lunch(taiwan: BusinessCalendar):
    # The earliest instant: 12:00, not 13:00 when work resumes.
    assert taiwan.instant_after(tpe(2026, 3, 2, 11, 30), 30 * M) == tpe(2026, 3, 2, 12)


def test_weekend_is_skipped(taiwan: BusinessCalendar):
    friday = tpe(2026, 3, 6, 17)
    assert taiwan.instant_after(friday, 2 * H) == tpe(2026, 3, 9, 10)
    assert taiwan.counted_time(friday, tpe(2026, 3, 9, 10)) == 2 * H
    assert taiwan.counted_time(tpe(2026, 3, 7, 0), tpe(2026, 3, 9, 0)) == timedelta(0)


def test_a_full_week_and_a_long_target(taiwan: BusinessCalendar):
    assert taiwan.counted_time(tpe(2026, 3, 2), tpe(2026, 3, 9)) == 40 * H
    # 168 h at 8 h a day is 21 working days; no Taiwan holiday in March 2026.
    assert taiwan.instant_after(tpe(2026, 3, 2, 9), 168 * H) == tpe(2026, 3, 30, 18)


def test_taiwan_holidays_come_from_the_package():
    days = taiwan_public_holidays([2026])
    # National Day falls on a Saturday in 2026; the package observes it on Friday 9 October.
    assert {date(2026, 10, 10), date(2026, 10, 9), date(2026, 1, 1)} <= days
    assert date(2026, 10, 12) not in days
    assert all(day.year == 2026 for day in days)
    both = taiwan_public_holidays(range(2025, 2027))
    assert date(2025, 10, 10) in both and days <= both


def test_taiwan_public_holiday_is_skipped(taiwan: BusinessCalendar):
    thursday = tpe(2026, 10, 8, 17)
    # Friday 9 (National Day observed) and the weekend do not count.
    assert taiwan.instant_after(thursday, 2 * H) == tpe(2026, 10, 12, 10)
    assert taiwan.counted_time(tpe(2026, 10, 9), tpe(2026, 10, 10)) == timedelta(0)
    assert taiwan.working_hours(date(2026, 10, 9)) == ()
    assert taiwan.working_hours(date(2026, 10, 8)) == (p("09:00", "12:00"), p("13:00", "18:00"))


def test_standard_taiwan_calendar_shape(taiwan: BusinessCalendar):
    assert taiwan.name == "taiwan_business_hours"
    assert taiwan.timezone == "Asia/Taipei"
    assert taiwan.weekly[5] == taiwan.weekly[6] == ()
    assert taiwan.holidays == taiwan_public_holidays(range(2024, 2031))
    small = standard_taiwan_calendar("tw", years=[2026])
    assert small.name == "tw" and small.holidays == taiwan_public_holidays([2026])


def test_extra_day_off_is_skipped():
    calendar = office("Asia/Taipei", extra_days_off=frozenset({date(2026, 3, 9)}))
    assert calendar.instant_after(tpe(2026, 3, 6, 16), 2 * H) == tpe(2026, 3, 10, 10)
    assert calendar.counted_time(tpe(2026, 3, 6), tpe(2026, 3, 11)) == 16 * H


def test_makeup_saturday_uses_mondays_hours(taiwan: BusinessCalendar):
    saturday = date(2026, 3, 7)
    calendar = BusinessCalendar(
        "tw",
        "Asia/Taipei",
        taiwan.weekly,
        holidays=taiwan.holidays,
        makeup_working_days=frozenset({saturday}),
    )
    assert calendar.instant_after(tpe(2026, 3, 6, 17), 2 * H) == tpe(2026, 3, 7, 10)
    assert calendar.counted_time(tpe(2026, 3, 7), tpe(2026, 3, 8)) == 8 * H
    assert calendar.working_hours(saturday) == taiwan.weekly[0]


def test_makeup_day_with_its_own_hours_wins_over_a_holiday():
    saturday = date(2026, 10, 10)  # National Day, and a Saturday
    calendar = office(
        "Asia/Taipei",
        holidays=frozenset({saturday}),
        makeup_working_days=frozenset({saturday}),
        makeup_hours=(p("10:00", "12:00"),),
    )
    assert calendar.counted_time(tpe(2026, 10, 10), tpe(2026, 10, 11)) == 2 * H
    assert calendar.instant_after(tpe(2026, 10, 9, 16, 30), 1 * H) == tpe(2026, 10, 10, 10, 30)


@pytest.mark.parametrize(
    ("start", "counted", "expected"),
    [
        (tpe(2026, 3, 2, 7), 1 * H, tpe(2026, 3, 2, 10)),  # before opening
        (tpe(2026, 3, 2, 12, 30), 30 * M, tpe(2026, 3, 2, 13, 30)),  # at lunch
        (tpe(2026, 3, 2, 20), 1 * H, tpe(2026, 3, 3, 10)),  # after closing
        (tpe(2026, 3, 7, 10), 1 * H, tpe(2026, 3, 9, 10)),  # on Saturday
        (tpe(2026, 3, 2, 18), 9 * H, tpe(2026, 3, 4, 10)),  # at closing, over a full day
    ],
)
def test_start_outside_working_hours(
    taiwan: BusinessCalendar, start: datetime, counted: timedelta, expected: datetime
):
    assert taiwan.instant_after(start, counted) == expected
    assert taiwan.counted_time(start, expected) == counted


def test_zero_target_and_empty_ranges(taiwan: BusinessCalendar):
    for start in (tpe(2026, 3, 2, 10), tpe(2026, 3, 7, 3)):
        assert taiwan.instant_after(start, timedelta(0)) == start
        assert taiwan.counted_time(start, start) == timedelta(0)
        assert taiwan.counted_time(start, start - 5 * H) == timedelta(0)


def test_sub_minute_times(taiwan: BusinessCalendar):
    start = tpe(2026, 3, 2, 11, 59, 30)
    assert taiwan.instant_after(start, timedelta(seconds=45)) == tpe(2026, 3, 2, 13, 0, 15)
    later = start + timedelta(hours=2, microseconds=7)
    assert taiwan.counted_time(start, later) == timedelta(hours=1, microseconds=7)


def test_result_keeps_the_zone_of_start(taiwan: BusinessCalendar):
    start = utc(2026, 3, 2, 3, 30)  # 11:30 in Taipei
    due = taiwan.instant_after(start, 2 * H)
    assert due.tzinfo is UTC and due == utc(2026, 3, 2, 6, 30)
    assert taiwan.counted_time(start, tpe(2026, 3, 2, 14, 30)) == 2 * H


def test_instant_after_inverts_counted_time(taiwan: BusinessCalendar):
    starts = [tpe(2026, 3, 2, 11, 30), tpe(2026, 3, 6, 17), tpe(2026, 10, 8, 12, 15)]
    ends = [tpe(2026, 3, 2, 12, 40), tpe(2026, 3, 9, 2), tpe(2026, 10, 14, 13, 1)]
    for start in starts:
        for end in ends:
            counted = taiwan.counted_time(start, end)
            due = taiwan.instant_after(start, counted)
            assert due <= max(start, end)
            assert taiwan.counted_time(start, due) == counted
            # Nothing counts between the due time and the end.
            assert taiwan.counted_time(due, end) == timedelta(0)
    for counted in (M, 3 * H, 17 * H + 59 * M, 100 * H):
        assert taiwan.counted_time(starts[0], taiwan.instant_after(starts[0], counted)) == counted


def test_drives_the_sla_clock(taiwan: BusinessCalendar):
    started = ClockEvent(tpe(2026, 3, 6, 17), "start")
    state = clock_state(4 * 3600, [started], tpe(2026, 3, 9, 10), calendar=taiwan)
    assert state.state == "running"
    assert state.elapsed_seconds == 2 * 3600
    assert state.due_at == tpe(2026, 3, 9, 12)
    breached = clock_state(4 * 3600, [started], tpe(2026, 3, 10), calendar=taiwan)
    assert breached.breached_at == tpe(2026, 3, 9, 12)


def test_long_ranges_are_fast(taiwan: BusinessCalendar):
    start = tpe(2024, 1, 1)
    ten_years = taiwan.counted_time(start, tpe(2034, 1, 1))
    assert timedelta(days=800) < ten_years < timedelta(days=900)


# --- DST -------------------------------------------------------------------------------------


def test_taipei_has_no_dst():
    calendar = every_day("Asia/Taipei")
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        start = datetime.combine(day, time(0), TAIPEI)
        assert calendar.counted_time(start, start + timedelta(days=1)) == 24 * H


@pytest.mark.parametrize(
    ("zone", "short_day", "long_day"),
    [
        ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
        ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
    ],
)
def test_dst_days_are_23_and_25_hours(zone: str, short_day: date, long_day: date):
    calendar = every_day(zone)
    tz = ZoneInfo(zone)

    def day_length(day: date) -> timedelta:
        start = datetime.combine(day, time(0), tz)
        return calendar.counted_time(start, datetime.combine(day + timedelta(days=1), time(0), tz))

    assert day_length(short_day) == 23 * H
    assert day_length(long_day) == 25 * H
    assert day_length(short_day - timedelta(days=1)) == 24 * H
    midnight = datetime.combine(short_day, time(0), tz)
    # 12 counted hours after midnight on the short day is 13:00 local (only 12 h elapsed).
    assert calendar.instant_after(midnight, 12 * H) == datetime.combine(short_day, time(13), tz)
    midnight = datetime.combine(long_day, time(0), tz)
    assert calendar.instant_after(midnight, 12 * H) == datetime.combine(long_day, time(11), tz)


@pytest.mark.parametrize(
    ("zone", "friday", "monday_utc_10am"),
    [
        # Spring forward: Friday is UTC+1 (or -5), Monday UTC+2 (or -4).
        ("Europe/Berlin", datetime(2026, 3, 27, 16), utc(2026, 3, 30, 8)),
        ("America/New_York", datetime(2026, 3, 6, 16), utc(2026, 3, 9, 14)),
        # Fall back.
        ("Europe/Berlin", datetime(2026, 10, 23, 16), utc(2026, 10, 26, 9)),
        ("America/New_York", datetime(2026, 10, 30, 16), utc(2026, 11, 2, 15)),
    ],
)
def test_office_hours_across_both_transitions(
    zone: str, friday: datetime, monday_utc_10am: datetime
):
    calendar = office(zone)
    start = friday.replace(tzinfo=ZoneInfo(zone))
    due = calendar.instant_after(start, 2 * H)
    assert due == monday_utc_10am
    assert (due.astimezone(ZoneInfo(zone)).hour, due.astimezone(ZoneInfo(zone)).minute) == (10, 0)
    assert calendar.counted_time(start, monday_utc_10am) == 2 * H
    assert calendar.counted_time(start.astimezone(UTC), monday_utc_10am) == 2 * H


def test_period_over_the_skipped_hour_counts_real_time():
    calendar = every_day("Europe/Berlin", (p("01:00", "04:00"),))
    # 29 March 2026: 02:00-03:00 does not exist, so 01:00-04:00 is 2 real hours.
    assert calendar.counted_time(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == 2 * H
    midnight = datetime(2026, 3, 29, tzinfo=BERLIN)
    assert calendar.instant_after(midnight, 90 * M) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    assert calendar.instant_after(midnight, 90 * M) == utc(2026, 3, 29, 1, 30)


def test_period_inside_the_skipped_hour_never_counts():
    calendar = every_day("Europe/Berlin", (p("02:15", "02:45"),))
    assert calendar.counted_time(utc(2026, 3, 29), utc(2026, 3, 29, 12)) == timedelta(0)
    # The next day has the period again.
    assert calendar.instant_after(utc(2026, 3, 29), 10 * M) == utc(2026, 3, 30, 0, 25)


def test_period_over_the_repeated_hour_counts_real_time():
    calendar = every_day("Europe/Berlin", (p("01:00", "04:00"),))
    # 25 October 2026: 02:00-03:00 happens twice, so 01:00-04:00 is 4 real hours.
    assert calendar.counted_time(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 4 * H
    midnight = datetime(2026, 10, 25, tzinfo=BERLIN)
    assert calendar.instant_after(midnight, 3 * H) == utc(2026, 10, 25, 2)  # 03:00 CET


def test_period_inside_the_repeated_hour_counts_both_times():
    calendar = every_day("Europe/Berlin", (p("02:00", "02:30"),))
    assert calendar.counted_time(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 1 * H
    midnight = datetime(2026, 10, 25, tzinfo=BERLIN)
    due = calendar.instant_after(midnight, 45 * M)
    # 30 minutes at 02:00-02:30 CEST, then 15 more at 02:00-02:15 CET. (PEP 495: a time in
    # the repeated hour never compares equal to a datetime of another zone, so compare in UTC.)
    assert due.astimezone(UTC) == utc(2026, 10, 25, 1, 15)
    assert (due.hour, due.minute, due.fold, due.utcoffset()) == (2, 15, 1, H)


def test_dst_at_midnight_zone():
    # America/Santiago springs forward at 24:00 -> 01:00 (2026-09-06 has no 00:00-01:00).
    calendar = every_day("America/Santiago")
    tz = ZoneInfo("America/Santiago")
    start = datetime(2026, 9, 5, 12, tzinfo=tz)
    end = datetime(2026, 9, 6, 12, tzinfo=tz)
    assert calendar.counted_time(start, end) == end.astimezone(UTC) - start.astimezone(UTC)
    assert calendar.counted_time(start, end) == 23 * H
    # A Sunday period 00:00-02:00 only has its second hour that day.
    sunday = BusinessCalendar("s", "America/Santiago", {6: (p("00:00", "02:00"),)})
    assert sunday.counted_time(start, end) == 1 * H
    assert sunday.instant_after(start, 30 * M) == utc(2026, 9, 6, 4, 30)


# --- inputs at run time ----------------------------------------------------------------------


def test_naive_datetimes_are_rejected(taiwan: BusinessCalendar):
    with pytest.raises(ValueError, match="timezone-aware"):
        taiwan.counted_time(datetime(2026, 3, 2, 9), tpe(2026, 3, 2, 10))
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        taiwan.counted_time(tpe(2026, 3, 2, 9), datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        taiwan.instant_after(datetime(2026, 3, 2, 9), H)


def test_negative_target_is_rejected(taiwan: BusinessCalendar):
    with pytest.raises(ValueError, match="negative"):
        taiwan.instant_after(tpe(2026, 3, 2, 9), -H)


def test_unreachable_target_raises():
    never = BusinessCalendar("never", "UTC", {})
    with pytest.raises(CalendarError, match="400 days") as caught:
        never.instant_after(utc(2026, 1, 1), M)
    assert caught.value.field == "weekly"
    assert never.counted_time(utc(2026, 1, 1), utc(2030, 1, 1)) == timedelta(0)
    one_hour_a_week = BusinessCalendar("rare", "UTC", {2: (p("10:00", "11:00"),)})
    assert one_hour_a_week.instant_after(utc(2026, 1, 1), 50 * H) < utc(2027, 1, 1)
    with pytest.raises(CalendarError):
        one_hour_a_week.instant_after(utc(2026, 1, 1), 60 * H)


# --- the calendar's own checks ---------------------------------------------------------------


def check_error(error: CalendarError, field: str, *fragments: str) -> None:
    assert error.field == field, str(error)
    for fragment in fragments:
        assert fragment in str(error), str(error)


def test_calendar_error_is_a_value_error_and_pickles():
    error = CalendarError("bad", field="weekly")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.field) == ("bad", "weekly")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (time(10), time(9), "end"),
        (time(10), time(10), "end"),
        (time(10, 0, 30), time(11), "start"),
        (time(10), time(11, 0, 0, 5), "end"),
        (time(10, tzinfo=UTC), time(11), "start"),
        ("10:00", time(11), "start"),
    ],
)
def test_working_period_checks(start: Any, end: Any, field: str):
    with pytest.raises(CalendarError) as caught:
        WorkingPeriod(start, end)
    check_error(caught.value, field)


def test_working_period_until_midnight():
    assert WorkingPeriod(time(22), time(0)).end_offset == timedelta(days=1)
    assert str(WorkingPeriod(time(0), time(0))) == "00:00-24:00"


@pytest.mark.parametrize(
    ("kwargs", "field", "fragments"),
    [
        ({"name": ""}, "name", ()),
        ({"name": 5}, "name", ()),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", ("Mars/Olympus_Mons",)),
        ({"timezone": ""}, "timezone", ()),
        ({"timezone": "../../etc/passwd"}, "timezone", ()),
        ({"timezone": "/etc/localtime"}, "timezone", ()),
        ({"timezone": "localtime"}, "timezone", ()),
        ({"timezone": "America"}, "timezone", ()),
        ({"timezone": None}, "timezone", ()),
        ({"weekly": [1, 2]}, "weekly", ()),
        ({"weekly": {7: NINE_TO_FIVE}}, "weekly", ("7",)),
        ({"weekly": {True: NINE_TO_FIVE}}, "weekly", ()),
        ({"weekly": {0: ("09:00-17:00",)}}, "weekly", ("Monday",)),
        ({"weekly": {0: p("09:00", "17:00")}}, "weekly", ("Monday",)),
        (
            {"weekly": {1: (p("09:00", "12:00"), p("11:00", "13:00"))}},
            "weekly",
            ("Tuesday", "overlap", "09:00-12:00", "11:00-13:00"),
        ),
        (
            {"weekly": {4: (p("13:00", "18:00"), p("09:00", "12:00"))}},
            "weekly",
            ("Friday", "out of order"),
        ),
        (
            {"weekly": {6: (p("09:00", "24:00"), p("10:00", "11:00"))}},
            "weekly",
            ("Sunday",),
        ),
        ({"holidays": frozenset({datetime(2026, 1, 1)})}, "holidays", ()),
        ({"holidays": "2026-01-01"}, "holidays", ()),
        ({"extra_days_off": frozenset({"2026-01-01"})}, "extra_days_off", ()),
        ({"makeup_working_days": [5]}, "makeup_working_days", ()),
        (
            {
                "extra_days_off": frozenset({date(2026, 3, 7)}),
                "makeup_working_days": frozenset({date(2026, 3, 7)}),
            },
            "makeup_working_days",
            ("2026-03-07",),
        ),
        (
            {"makeup_hours": (p("09:00", "12:00"), p("11:00", "13:00"))},
            "makeup_hours",
            ("overlap",),
        ),
        ({"makeup_hours": "09:00"}, "makeup_hours", ()),
        (
            {"weekly": {1: NINE_TO_FIVE}, "makeup_working_days": frozenset({date(2026, 3, 7)})},
            "makeup_hours",
            ("Monday",),
        ),
    ],
)
def test_calendar_checks_name_the_field(
    kwargs: dict[str, Any], field: str, fragments: tuple[str, ...]
):
    arguments: dict[str, Any] = {
        "name": "office",
        "timezone": "Europe/Berlin",
        "weekly": {0: NINE_TO_FIVE},
    }
    arguments.update(kwargs)
    with pytest.raises(CalendarError) as caught:
        BusinessCalendar(**arguments)
    check_error(caught.value, field, *fragments)


def test_calendar_normalises_and_is_immutable():
    calendar = BusinessCalendar(
        "office",
        "UTC",
        {0: [p("09:00", "12:00"), p("12:00", "13:00")]},  # type: ignore[dict-item]
        holidays={date(2026, 1, 1)},  # type: ignore[arg-type]
    )
    assert calendar.weekly[0] == (p("09:00", "12:00"), p("12:00", "13:00"))
    assert calendar.weekly[3] == ()
    assert calendar.holidays == frozenset({date(2026, 1, 1)})
    with pytest.raises(TypeError):
        calendar.weekly[1] = NINE_TO_FIVE  # type: ignore[index]
    # Touching periods count as one.
    assert calendar.counted_time(utc(2026, 1, 5), utc(2026, 1, 6)) == 4 * H
    assert calendar.instant_after(utc(2026, 1, 5, 11), 90 * M) == utc(2026, 1, 5, 12, 30)
    same = BusinessCalendar(
        "office",
        "UTC",
        {0: (p("09:00", "12:00"), p("12:00", "13:00")), 6: ()},
        holidays=frozenset({date(2026, 1, 1)}),
    )
    assert same == calendar and hash(same) == hash(calendar)
    assert len({same, calendar}) == 1


def test_calendar_pickles_copies_and_replaces(taiwan: BusinessCalendar):
    assert pickle.loads(pickle.dumps(taiwan)) == taiwan
    assert copy.deepcopy(taiwan) == taiwan
    renamed = replace(taiwan, name="renamed", extra_days_off=frozenset({date(2026, 3, 2)}))
    assert renamed.name == "renamed"
    assert renamed.counted_time(tpe(2026, 3, 2), tpe(2026, 3, 3)) == timedelta(0)


# --- JSON form -------------------------------------------------------------------------------


def base_dict(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "berlin_office",
        "timezone": "Europe/Berlin",
        "weekly": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
            "sat": [{"start": "22:00", "end": "24:00"}],
        },
        "holidays": ["2026-12-25"],
        "extra_days_off": ["2026-12-24"],
        "makeup_working_days": ["2026-12-27"],
        "makeup_hours": [{"start": "10:00", "end": "14:00"}],
    }
    data.update(changes)
    return data


def test_from_dict_and_back():
    calendar = calendar_from_dict(base_dict())
    assert calendar.weekly[0] == (p("09:00", "12:00"), p("13:00", "17:00"))
    assert calendar.weekly[5] == (WorkingPeriod(time(22), time(0)),)
    assert calendar.holidays == frozenset({date(2026, 12, 25)})
    assert calendar.makeup_hours == (p("10:00", "14:00"),)
    data = calendar_to_dict(calendar)
    assert json.loads(json.dumps(data)) == data
    assert data["weekly"] == {
        "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
        "tue": [],
        "wed": [],
        "thu": [],
        "fri": [],
        "sat": [{"start": "22:00", "end": "24:00"}],
        "sun": [],
    }
    assert data["makeup_working_days"] == ["2026-12-27"]
    assert calendar_from_dict(data) == calendar


def test_optional_fields_default():
    data = {"name": "n", "timezone": "UTC", "weekly": {"tue": [{"start": "08:00", "end": "09:00"}]}}
    calendar = calendar_from_dict(data)
    assert calendar.holidays == calendar.extra_days_off == calendar.makeup_working_days
    assert calendar.makeup_hours is None
    assert calendar_to_dict(calendar)["makeup_hours"] is None
    assert calendar_from_dict(calendar_to_dict(calendar)) == calendar


def test_taiwan_calendar_round_trips(taiwan: BusinessCalendar):
    data = calendar_to_dict(taiwan)
    assert data["weekly"]["fri"] == [  # type: ignore[index]
        {"start": "09:00", "end": "12:00"},
        {"start": "13:00", "end": "18:00"},
    ]
    assert "2026-10-09" in data["holidays"]  # type: ignore[operator]
    assert calendar_from_dict(json.loads(json.dumps(data))) == taiwan


def week(**days: object) -> dict[str, object]:
    return base_dict(weekly=days)


def period(start: object, end: object) -> list[dict[str, object]]:
    return [{"start": start, "end": end}]


@pytest.mark.parametrize(
    ("data", "field", "fragments"),
    [
        ([1, 2], "calendar", ()),
        (base_dict(colour="red"), "colour", ("unknown field",)),
        ({"timezone": "UTC", "weekly": {}}, "name", ("required",)),
        ({"name": "n", "weekly": {}}, "timezone", ("required",)),
        ({"name": "n", "timezone": "UTC"}, "weekly", ("required",)),
        (base_dict(name=7), "name", ()),
        (base_dict(name="  "), "name", ()),
        (base_dict(timezone="Europe/Atlantis"), "timezone", ("Europe/Atlantis",)),
        (base_dict(timezone=["UTC"]), "timezone", ()),
        (base_dict(weekly=[]), "weekly", ()),
        (week(monday=period("09:00", "10:00")), "weekly", ("'monday'", "mon, tue")),
        (week(Mon=period("09:00", "10:00")), "weekly", ("'Mon'",)),
        (week(mon="09:00-10:00"), "weekly", ("Monday",)),
        (week(mon=["09:00-10:00"]), "weekly", ("Monday",)),
        (week(mon=[{"start": "09:00"}]), "weekly", ("Monday",)),
        (week(mon=[{"start": "09:00", "end": "10:00", "x": 1}]), "weekly", ()),
        (week(tue=period("9:00", "10:00")), "weekly", ("Tuesday", "'9:00'")),
        (week(tue=period("09:00:00", "10:00")), "weekly", ("Tuesday",)),
        (week(tue=period("25:00", "26:00")), "weekly", ("Tuesday",)),
        (week(tue=period("12:60", "13:00")), "weekly", ("Tuesday",)),
        (week(tue=period("24:00", "24:00")), "weekly", ("start",)),
        (week(tue=period("09:00", "24:01")), "weekly", ("end",)),
        (week(tue=period(900, "10:00")), "weekly", ("Tuesday",)),
        (week(wed=period("10:00", "09:00")), "weekly", ("Wednesday", "after start")),
        (week(wed=period("10:00", "10:00")), "weekly", ("Wednesday",)),
        (week(thu=period("22:00", "02:00")), "weekly", ("Thursday", "midnight")),
        (
            week(fri=[{"start": "09:00", "end": "12:00"}, {"start": "11:30", "end": "13:00"}]),
            "weekly",
            ("Friday", "overlap"),
        ),
        (
            week(sun=[{"start": "13:00", "end": "18:00"}, {"start": "09:00", "end": "12:00"}]),
            "weekly",
            ("Sunday", "out of order"),
        ),
        (base_dict(holidays=["2026-02-30"]), "holidays", ("2026-02-30",)),
        (base_dict(holidays=["2026/10/10"]), "holidays", ()),
        (base_dict(holidays=["20261010"]), "holidays", ()),
        (base_dict(holidays=[20261010]), "holidays", ()),
        (base_dict(holidays="2026-10-10"), "holidays", ()),
        (base_dict(extra_days_off=["2026-13-01"]), "extra_days_off", ()),
        (base_dict(makeup_working_days=["tomorrow"]), "makeup_working_days", ()),
        (base_dict(makeup_working_days=["2026-12-24"]), "makeup_working_days", ("2026-12-24",)),
        (base_dict(makeup_hours="10:00-14:00"), "makeup_hours", ()),
        (base_dict(makeup_hours=period("14:00", "10:00")), "makeup_hours", ("after start",)),
        (
            base_dict(
                makeup_hours=[
                    {"start": "10:00", "end": "14:00"},
                    {"start": "12:00", "end": "15:00"},
                ]
            ),
            "makeup_hours",
            ("overlap",),
        ),
        (base_dict(makeup_hours=[], weekly={}), "makeup_hours", ()),
    ],
)
def test_from_dict_errors_name_the_field(data: Any, field: str, fragments: tuple[str, ...]):
    with pytest.raises(CalendarError) as caught:
        calendar_from_dict(data)
    check_error(caught.value, field, *fragments)


# --- property test against a minute-by-minute oracle -----------------------------------------

# Each zone with the local dates of its DST changes in 2026: Lord Howe shifts by 30 minutes,
# Santiago changes at midnight (so a local date starts at 01:00, or 23:00 repeats).
DST_CHANGES: dict[str, tuple[date, ...]] = {
    "UTC": (),
    "Asia/Taipei": (),
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
    "Australia/Lord_Howe": (date(2026, 4, 5), date(2026, 10, 4)),
    "America/Santiago": (date(2026, 4, 5), date(2026, 9, 6)),
}
# Days without a DST change nearby: summer, a new year, a leap day.
ORDINARY_DAYS = (date(2026, 6, 15), date(2026, 1, 1), date(2024, 2, 29))
WINDOW_DAYS = 14
# Minute marks near DST changes (01:00-03:00) and at the ends of the day are drawn more often.
DST_MARKS = (0, 60, 90, 120, 150, 180, 1380, 1440)
MINUTE_MARKS = st.integers(-40, 1440).map(lambda v: DST_MARKS[v % len(DST_MARKS)] if v < 0 else v)


@dataclass(frozen=True)
class RawCalendar:
    zone: str
    weekly: dict[int, list[tuple[int, int]]]  # minutes from midnight, end 1440 = 24:00
    holidays: set[date]
    extra_days_off: set[date]
    makeup_days: set[date]
    makeup_hours: list[tuple[int, int]] | None
    window_start: datetime  # naive UTC
    start: int  # minutes into the window
    end: int


def to_periods(marks: list[int]) -> list[tuple[int, int]]:
    # Sorted marks paired up: (a, b), (c, d), ...; b == c gives touching periods.
    marks = sorted(marks)
    return [(low, high) for low, high in zip(marks[::2], marks[1::2], strict=False) if low < high]


DAY_PERIODS = st.lists(MINUTE_MARKS, max_size=5).map(to_periods)


@st.composite
def raw_calendars(draw: st.DrawFn) -> RawCalendar:
    zone = draw(st.sampled_from(sorted(DST_CHANGES)))
    # In a zone with DST, mostly a window with a change in it, at a random place.
    near = draw(st.sampled_from((DST_CHANGES[zone] or ORDINARY_DAYS) + ORDINARY_DAYS[:1]))
    anchor = near - timedelta(days=draw(st.integers(1, WINDOW_DAYS - 2)))
    days = [anchor + timedelta(days=offset) for offset in range(-1, WINDOW_DAYS + 2)]
    weekly = {weekday: draw(DAY_PERIODS) for weekday in range(7)}
    makeup_days = set(draw(st.lists(st.sampled_from(days), max_size=3)))
    makeup_hours = draw(st.none() | DAY_PERIODS)
    monday_or_own = weekly[0] if makeup_hours is None else makeup_hours
    if not monday_or_own:
        makeup_days = set()
    window_start = datetime.combine(anchor, time(0))
    last = WINDOW_DAYS * 1440
    if draw(st.booleans()):
        start, end = draw(st.integers(0, last)), draw(st.integers(0, last))
    else:
        # A range of at most 5 days that surely contains the local date `near` (and so its
        # DST change).
        def minute_of(day: date) -> int:
            utc_start = datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)
            return (utc_start.replace(tzinfo=None) - window_start) // M

        before, after = minute_of(near) - 120, minute_of(near + timedelta(days=1)) + 120
        start = draw(st.integers(max(0, before - 1440), max(0, before)))
        end = draw(st.integers(min(last, after), min(last, after + 1440)))
    return RawCalendar(
        zone=zone,
        weekly=weekly,
        holidays=set(draw(st.lists(st.sampled_from(days), max_size=4))),
        extra_days_off=set(draw(st.lists(st.sampled_from(days), max_size=2))) - makeup_days,
        makeup_days=makeup_days,
        makeup_hours=makeup_hours,
        window_start=window_start,
        start=start,
        end=end,
    )


def oracle_minutes(raw: RawCalendar, first: int, last: int) -> list[bool]:
    """For each whole minute of the window in [first, last): is it working time?"""
    zone = ZoneInfo(raw.zone)
    tables: dict[date, list[bool]] = {}

    def minutes_of(day: date) -> list[bool]:
        # Which minutes of a local date's wall clock (0..1439) are working time.
        if day in raw.makeup_days:
            periods = raw.weekly[0] if raw.makeup_hours is None else raw.makeup_hours
        elif day in raw.holidays or day in raw.extra_days_off:
            periods = []
        else:
            periods = raw.weekly[day.weekday()]
        table = [False] * 1440
        for low, high in periods:
            table[low:high] = [True] * (high - low)
        return table

    flags = []
    instant = (raw.window_start + timedelta(minutes=first)).replace(tzinfo=UTC)
    for _ in range(first, last):
        local = instant.astimezone(zone)
        day = local.date()
        table = tables.get(day)
        if table is None:
            table = tables[day] = minutes_of(day)
        flags.append(table[local.hour * 60 + local.minute])
        instant += M
    return flags


def build(raw: RawCalendar) -> BusinessCalendar:
    def periods(pairs: list[tuple[int, int]]) -> tuple[WorkingPeriod, ...]:
        def wall(minutes: int) -> time:
            return time(0) if minutes == 1440 else time(minutes // 60, minutes % 60)

        return tuple(WorkingPeriod(wall(low), wall(high)) for low, high in pairs)

    return BusinessCalendar(
        name="random",
        timezone=raw.zone,
        weekly={weekday: periods(pairs) for weekday, pairs in raw.weekly.items()},
        holidays=frozenset(raw.holidays),
        extra_days_off=frozenset(raw.extra_days_off),
        makeup_working_days=frozenset(raw.makeup_days),
        makeup_hours=None if raw.makeup_hours is None else periods(raw.makeup_hours),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=raw_calendars(), permille=st.integers(0, 1000))
def test_matches_minute_by_minute_oracle(raw: RawCalendar, permille: int):
    calendar = build(raw)
    assert calendar_from_dict(calendar_to_dict(calendar)) == calendar
    zone = ZoneInfo(raw.zone)

    def instant(minute: int) -> datetime:
        # Alternate the zone the instants are given in; only the instant matters.
        aware = (raw.window_start + timedelta(minutes=minute)).replace(tzinfo=UTC)
        return aware.astimezone(zone) if minute % 2 else aware

    low, high = sorted((raw.start, raw.end))
    flags = oracle_minutes(raw, low, high)
    worked = sum(flags)
    assert calendar.counted_time(instant(low), instant(high)) == timedelta(minutes=worked)
    assert calendar.counted_time(instant(high), instant(low)) == timedelta(0)

    # Targets within [low, high): the oracle's answer is the end of the minute that reaches
    # the target. Besides a random one and the whole, try every target reached exactly at the
    # end of a run of working minutes, where the earliest instant is before a gap.
    # reached_after[i]: counted minutes up to and including minute low + i.
    reached_after = list(accumulate(map(int, flags)))
    targets = {worked * permille // 1000, worked}
    targets.update(
        count
        for index, count in enumerate(reached_after)
        if flags[index] and (index + 1 == len(flags) or not flags[index + 1])
    )
    for target in sorted(targets):
        expected = low if target == 0 else low + reached_after.index(target) + 1
        due = calendar.instant_after(instant(low), timedelta(minutes=target))
        # Compared in UTC: same-zone comparisons ignore fold, inter-zone ones reject it.
        assert due.astimezone(UTC) == instant(expected).astimezone(UTC), target
        assert due.tzinfo is instant(low).tzinfo


def test_standard_taiwan_calendar_counts_the_government_makeup_saturday():
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from engine.domain.calendars import standard_taiwan_calendar

    calendar = standard_taiwan_calendar(years=[2025])
    taipei = ZoneInfo("Asia/Taipei")
    # Saturday 2025-02-08 is a make-up working day in Taiwan; the Sunday after is not.
    saturday = datetime(2025, 2, 8, 9, 0, tzinfo=taipei)
    assert calendar.counted_time(saturday, saturday + timedelta(hours=2)) == timedelta(hours=2)
    sunday = datetime(2025, 2, 9, 9, 0, tzinfo=taipei)
    assert calendar.counted_time(sunday, sunday + timedelta(hours=2)) == timedelta(0)
