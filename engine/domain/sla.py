"""SLA clocks: targets per priority and the state of a clock replayed from its events.

A clock is a pure function of its events and "now", so the same code serves the timer worker,
the API and the BPMN script tasks, and recomputing after any event is always safe.

Which time counts is delegated to a `WorkCalendar` (24x7 here; business calendars in
`engine.domain.calendars` implement the same two methods).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal, Protocol, get_args

ClockEventKind = Literal["start", "stop", "suspend", "resume"]
ClockStateName = Literal["running", "paused", "met", "breached", "not_started"]

_MINUTE = 60
_HOUR = 60 * _MINUTE


def _check_target(value: object, name: str) -> int:
    # A zero target would make every clock breached at creation and percent undefined.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number of seconds, got {value!r}")
    return value


def _require_aware(value: datetime, name: str) -> None:
    # Naive datetimes are ambiguous across the server, the database and the browser.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class SlaTarget:
    response_seconds: int
    resolution_seconds: int

    def __post_init__(self) -> None:
        _check_target(self.response_seconds, "response_seconds")
        _check_target(self.resolution_seconds, "resolution_seconds")


# Read-only: the policy service copies these and must never mutate the shipped defaults.
DEFAULT_SLA_TARGETS: Mapping[int, SlaTarget] = MappingProxyType(
    {
        1: SlaTarget(15 * _MINUTE, 4 * _HOUR),
        2: SlaTarget(30 * _MINUTE, 12 * _HOUR),
        3: SlaTarget(2 * _HOUR, 24 * _HOUR),
        4: SlaTarget(8 * _HOUR, 72 * _HOUR),
        5: SlaTarget(24 * _HOUR, 168 * _HOUR),
    }
)


# Time an incident may spend with each tier (stage clocks), per priority.
DEFAULT_STAGE_TARGETS: Mapping[int, Mapping[str, int]] = MappingProxyType(
    {
        1: MappingProxyType(
            {
                "service_desk": 30 * _MINUTE,
                "level2": 2 * _HOUR,
                "level3": 2 * _HOUR,
                "vendor": 4 * _HOUR,
            }
        ),
        2: MappingProxyType(
            {"service_desk": _HOUR, "level2": 6 * _HOUR, "level3": 6 * _HOUR, "vendor": 12 * _HOUR}
        ),
        3: MappingProxyType(
            {
                "service_desk": 4 * _HOUR,
                "level2": 12 * _HOUR,
                "level3": 12 * _HOUR,
                "vendor": 24 * _HOUR,
            }
        ),
        4: MappingProxyType(
            {
                "service_desk": 8 * _HOUR,
                "level2": 36 * _HOUR,
                "level3": 36 * _HOUR,
                "vendor": 72 * _HOUR,
            }
        ),
        5: MappingProxyType(
            {
                "service_desk": 24 * _HOUR,
                "level2": 72 * _HOUR,
                "level3": 72 * _HOUR,
                "vendor": 168 * _HOUR,
            }
        ),
    }
)


# --- calendars -------------------------------------------------------------------------------


class WorkCalendar(Protocol):
    """Which time counts towards an SLA target."""

    def counted_time(self, start: datetime, end: datetime) -> timedelta:
        """Counted time in [start, end); zero when end <= start."""
        ...

    def instant_after(self, start: datetime, counted: timedelta) -> datetime:
        """The earliest instant at which `counted` time has been counted since `start`."""
        ...


@dataclass(frozen=True)
class TwentyFourSeven:
    """Every second counts."""

    # In UTC: Python subtracts datetimes of one zone by wall clock, wrong across DST.
    def counted_time(self, start: datetime, end: datetime) -> timedelta:
        return max(end.astimezone(UTC) - start.astimezone(UTC), timedelta(0))

    def instant_after(self, start: datetime, counted: timedelta) -> datetime:
        return (start.astimezone(UTC) + counted).astimezone(start.tzinfo)


TWENTY_FOUR_SEVEN: WorkCalendar = TwentyFourSeven()


def counted_seconds(
    start: datetime, end: datetime, calendar: WorkCalendar = TWENTY_FOUR_SEVEN
) -> float:
    """Seconds of counted time between two instants (the seam a business calendar replaces)."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    return calendar.counted_time(start, end).total_seconds()


# --- clock events and state ------------------------------------------------------------------


@dataclass(frozen=True)
class ClockEvent:
    """Something that changes a clock.

    start: the clock starts, or restarts after a stop (incident created; resolution on reopen).
    stop: response at record_incident completed; resolution at resolved.
    suspend/resume: the incident is suspended/resumed; this state is shared by all clocks.
    """

    at: datetime
    kind: ClockEventKind

    def __post_init__(self) -> None:
        _require_aware(self.at, "ClockEvent.at")
        if self.kind not in get_args(ClockEventKind):
            raise ValueError(f"unknown clock event kind {self.kind!r}")


@dataclass(frozen=True)
class ClockState:
    state: ClockStateName
    elapsed_seconds: float
    target_seconds: int
    due_at: datetime | None
    percent: float
    breached: bool
    suspended_seconds: float
    breached_at: datetime | None


@dataclass(frozen=True)
class _Progress:
    """The clock replayed up to `at`."""

    at: datetime
    started_once: bool = False
    running: bool = False  # started and not stopped (it may still be suspended)
    suspended: bool = False
    elapsed: timedelta = timedelta(0)
    suspended_time: timedelta = timedelta(0)
    breached_at: datetime | None = None
    stopped_at: datetime | None = None


def _advance(
    progress: _Progress, until: datetime, target: timedelta, calendar: WorkCalendar
) -> _Progress:
    """Count the time from progress.at to `until`, during which nothing changed."""
    if until <= progress.at or not progress.running:
        return replace(progress, at=max(until, progress.at))
    counted = calendar.counted_time(progress.at, until)
    if progress.suspended:
        return replace(progress, at=until, suspended_time=progress.suspended_time + counted)
    elapsed = progress.elapsed + counted
    breached_at = progress.breached_at
    if breached_at is None and elapsed >= target:
        breached_at = calendar.instant_after(progress.at, target - progress.elapsed)
    return replace(progress, at=until, elapsed=elapsed, breached_at=breached_at)


def _apply(progress: _Progress, kind: ClockEventKind) -> _Progress:
    """Apply one event at progress.at; events that would not change anything are no-ops."""
    if kind == "start" and not progress.running:
        return replace(progress, started_once=True, running=True, stopped_at=None)
    if kind == "stop" and progress.running:
        return replace(progress, running=False, stopped_at=progress.at)
    if kind == "suspend":
        return replace(progress, suspended=True)
    if kind == "resume":
        return replace(progress, suspended=False)
    return progress


def _timeline(events: Sequence[ClockEvent], now: datetime) -> tuple[list[ClockEvent], datetime]:
    """Events up to `now` in time order, every instant in UTC.

    Python compares two datetimes of one zone by wall clock and ignores `fold`, so
    instants in a repeated DST hour would be misordered; in UTC they cannot be.
    sorted() is stable: events at the same instant keep the order they were given in.
    """
    now = now.astimezone(UTC)
    in_utc = (ClockEvent(event.at.astimezone(UTC), event.kind) for event in events)
    return sorted((e for e in in_utc if e.at <= now), key=lambda e: e.at), now


def _replay(
    events: Sequence[ClockEvent], now: datetime, target: timedelta, calendar: WorkCalendar
) -> _Progress:
    timeline, now = _timeline(events, now)
    progress = _Progress(at=timeline[0].at if timeline else now)
    for event in timeline:
        progress = _apply(_advance(progress, event.at, target, calendar), event.kind)
    return _advance(progress, now, target, calendar)


def _state_and_due(
    progress: _Progress, target: timedelta, now: datetime, calendar: WorkCalendar
) -> tuple[ClockStateName, datetime | None]:
    if not progress.started_once:
        return "not_started", None
    if progress.breached_at is not None:
        return "breached", progress.breached_at
    remaining = target - progress.elapsed
    if not progress.running:
        # The due time that was in force when the clock stopped, kept for reporting.
        assert progress.stopped_at is not None
        return "met", calendar.instant_after(progress.stopped_at, remaining)
    if progress.suspended:
        # Unknown until the incident resumes.
        return "paused", None
    return "running", calendar.instant_after(now, remaining)


def clock_state(
    target_seconds: int,
    events: Sequence[ClockEvent],
    now: datetime,
    *,
    calendar: WorkCalendar = TWENTY_FOUR_SEVEN,
) -> ClockState:
    """Replay a clock's events (in any order; those after `now` are ignored) up to `now`."""
    _check_target(target_seconds, "target_seconds")
    _require_aware(now, "now")
    target = timedelta(seconds=target_seconds)
    progress = _replay(events, now, target, calendar)
    state, due_at = _state_and_due(progress, target, now, calendar)
    return ClockState(
        state=state,
        elapsed_seconds=progress.elapsed.total_seconds(),
        target_seconds=target_seconds,
        due_at=due_at,
        # One correctly rounded division of exact microsecond counts, so a mark reached exactly
        # (e.g. 29 % of 100 s) compares equal to it instead of falling a rounding error short.
        percent=progress.elapsed * 100 / target,
        breached=progress.breached_at is not None,
        suspended_seconds=progress.suspended_time.total_seconds(),
        breached_at=progress.breached_at,
    )


SegmentMode = Literal["running", "paused", "stopped"]


@dataclass(frozen=True)
class ClockSegment:
    """A stretch of time in which nothing happened to the clock.

    `working_seconds` is the calendar's working time inside it (counted only
    when the mode is running); the rest of `wall_seconds` is non-working time.
    """

    start: datetime
    end: datetime
    mode: SegmentMode
    wall_seconds: float
    working_seconds: float
    elapsed_after: float


def _mode(progress: _Progress) -> SegmentMode:
    if not progress.running:
        return "stopped"
    return "paused" if progress.suspended else "running"


def clock_segments(
    events: Sequence[ClockEvent], now: datetime, *, calendar: WorkCalendar = TWENTY_FOUR_SEVEN
) -> list[ClockSegment]:
    """The clock's history as consecutive segments from its first event to `now`
    (adjacent stretches of one mode merged), so a reader can retrace every figure."""
    _require_aware(now, "now")
    timeline, now = _timeline(events, now)
    if not timeline:
        return []
    unlimited = timedelta.max
    progress = _Progress(at=timeline[0].at)
    segments: list[ClockSegment] = []
    for until, kind in [*((e.at, e.kind) for e in timeline), (now, None)]:
        mode, start = _mode(progress), progress.at
        progress = _advance(progress, until, unlimited, calendar)
        if until > start:
            segment = ClockSegment(
                start=start,
                end=until,
                mode=mode,
                wall_seconds=(until.astimezone(UTC) - start.astimezone(UTC)).total_seconds(),
                working_seconds=calendar.counted_time(start, until).total_seconds(),
                elapsed_after=progress.elapsed.total_seconds(),
            )
            _append_merged(segments, segment)
        if kind is not None:
            progress = _apply(progress, kind)
    return segments


def _append_merged(segments: list[ClockSegment], segment: ClockSegment) -> None:
    if not segments or segments[-1].mode != segment.mode or segments[-1].end != segment.start:
        segments.append(segment)
        return
    last = segments[-1]
    segments[-1] = replace(
        last,
        end=segment.end,
        wall_seconds=last.wall_seconds + segment.wall_seconds,
        working_seconds=last.working_seconds + segment.working_seconds,
        elapsed_after=segment.elapsed_after,
    )


def thresholds_crossed(
    before: ClockState, after: ClockState, marks: Sequence[int] = (50, 75, 100)
) -> list[int]:
    """The marks (percent of target) reached in `after` but not yet in `before`, ascending."""
    return [mark for mark in sorted(set(marks)) if before.percent < mark <= after.percent]


# Floating-point slack when comparing a clock's percent with a mark it has just reached.
_MARK_EPSILON = 1e-9


def threshold_instant(
    state: ClockState,
    percent: int,
    now: datetime,
    *,
    calendar: WorkCalendar = TWENTY_FOUR_SEVEN,
) -> datetime | None:
    """When the clock reaches `percent` of its target.

    `now` if it already has; the future instant if it is running; None while it
    is paused, stopped below the mark, or not started (nothing to wait for).
    """
    _require_aware(now, "now")
    if state.percent >= percent - _MARK_EPSILON:
        return now
    if state.state != "running":
        return None
    needed = timedelta(seconds=state.target_seconds * percent / 100 - state.elapsed_seconds)
    return calendar.instant_after(now, needed)


def has_reached(state: ClockState, percent: int) -> bool:
    return state.percent >= percent - _MARK_EPSILON
