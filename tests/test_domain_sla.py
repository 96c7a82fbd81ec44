from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.sla import (
    DEFAULT_SLA_TARGETS,
    ClockEvent,
    ClockEventKind,
    ClockState,
    SlaTarget,
    clock_state,
    counted_seconds,
    thresholds_crossed,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(seconds: float, kind: ClockEventKind) -> ClockEvent:
    return ClockEvent(at(seconds), kind)


def state_at(target: int, events: list[ClockEvent], now: float) -> ClockState:
    return clock_state(target, events, at(now))


# --- targets ---------------------------------------------------------------------------------


def test_default_targets_match_contract():
    assert {
        p: (t.response_seconds, t.resolution_seconds) for p, t in DEFAULT_SLA_TARGETS.items()
    } == {
        1: (15 * 60, 4 * 3600),
        2: (30 * 60, 12 * 3600),
        3: (2 * 3600, 24 * 3600),
        4: (8 * 3600, 72 * 3600),
        5: (24 * 3600, 168 * 3600),
    }


def test_default_targets_are_read_only():
    with pytest.raises(TypeError):
        DEFAULT_SLA_TARGETS[1] = SlaTarget(1, 1)  # type: ignore[index]


@pytest.mark.parametrize(("response", "resolution"), [(0, 10), (10, -1), (True, 10), (1.5, 10)])
def test_sla_target_rejects_non_positive_or_non_integer(response: object, resolution: object):
    with pytest.raises(ValueError):
        SlaTarget(response, resolution)  # type: ignore[arg-type]


# --- inputs ----------------------------------------------------------------------------------


def test_naive_event_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        ClockEvent(datetime(2024, 3, 1, 9, 0), "start")


def test_naive_now_is_rejected():
    with pytest.raises(ValueError, match="now"):
        clock_state(60, [ev(0, "start")], datetime(2024, 3, 1, 9, 0))


def test_unknown_event_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        ClockEvent(at(0), "pause")  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [0, -5, True])
def test_bad_target_is_rejected(target: int):
    with pytest.raises(ValueError, match="target_seconds"):
        clock_state(target, [ev(0, "start")], at(10))


def test_counted_seconds_is_24x7():
    assert counted_seconds(at(0), at(90.5)) == 90.5
    assert counted_seconds(at(90), at(0)) == 0.0
    with pytest.raises(ValueError):
        counted_seconds(datetime(2024, 1, 1), at(0))


# --- the states ------------------------------------------------------------------------------


def test_no_events_is_not_started():
    assert state_at(900, [], 100) == ClockState(
        state="not_started",
        elapsed_seconds=0.0,
        target_seconds=900,
        due_at=None,
        percent=0.0,
        breached=False,
        suspended_seconds=0.0,
        breached_at=None,
    )


def test_only_suspension_events_is_not_started():
    state = state_at(900, [ev(0, "suspend"), ev(10, "resume")], 100)
    assert (state.state, state.elapsed_seconds, state.suspended_seconds) == ("not_started", 0, 0)


def test_running_clock():
    state = state_at(900, [ev(0, "start")], 600)
    assert state.state == "running"
    assert state.elapsed_seconds == 600
    assert state.due_at == at(900)
    assert state.percent == pytest.approx(200 / 3)
    assert not state.breached
    assert state.breached_at is None


def test_reaching_the_target_exactly_is_a_breach():
    state = state_at(900, [ev(0, "start")], 900)
    assert (state.state, state.breached, state.breached_at, state.due_at) == (
        "breached",
        True,
        at(900),
        at(900),
    )
    assert state.percent == 100.0


def test_running_past_target_is_breached():
    state = state_at(900, [ev(0, "start")], 1000)
    assert state.state == "breached"
    assert state.elapsed_seconds == 1000
    assert state.breached_at == at(900)
    assert state.due_at == at(900)
    assert state.percent == pytest.approx(1000 / 9)


def test_stopped_before_target_is_met_and_keeps_its_due_time():
    state = state_at(900, [ev(0, "start"), ev(300, "stop")], 2000)
    assert state.state == "met"
    assert state.elapsed_seconds == 300
    assert state.due_at == at(900)  # stop at 300 + 600 remaining
    assert not state.breached


def test_stopped_after_target_stays_breached():
    state = state_at(900, [ev(0, "start"), ev(1000, "stop")], 2000)
    assert (state.state, state.elapsed_seconds, state.breached_at, state.due_at) == (
        "breached",
        1000,
        at(900),
        at(900),
    )


def test_stopped_exactly_at_target_is_breached():
    assert state_at(900, [ev(0, "start"), ev(900, "stop")], 2000).state == "breached"


def test_suspended_running_clock_is_paused_without_due_time():
    state = state_at(900, [ev(0, "start"), ev(100, "suspend")], 400)
    assert state.state == "paused"
    assert state.elapsed_seconds == 100
    assert state.suspended_seconds == 300
    assert state.due_at is None


def test_resume_pushes_the_due_time_back_by_the_suspension():
    state = state_at(900, [ev(0, "start"), ev(100, "suspend"), ev(400, "resume")], 500)
    assert state.state == "running"
    assert state.elapsed_seconds == 200
    assert state.suspended_seconds == 300
    assert state.due_at == at(1200)  # 900 + 300 suspended


def test_suspension_before_start_pauses_the_clock_once_started():
    events = [ev(0, "suspend"), ev(100, "start"), ev(300, "resume")]
    state = state_at(900, events, 500)
    assert state.state == "running"
    assert state.elapsed_seconds == 200
    assert state.suspended_seconds == 200  # 0..100 fell before the clock started
    assert state.due_at == at(1200)


def test_started_while_suspended_is_paused():
    state = state_at(900, [ev(0, "suspend"), ev(100, "start")], 500)
    assert (state.state, state.elapsed_seconds, state.due_at) == ("paused", 0, None)


def test_paused_past_target_is_breached():
    state = state_at(900, [ev(0, "start"), ev(1000, "suspend")], 1200)
    assert (state.state, state.breached_at, state.due_at) == ("breached", at(900), at(900))
    assert state.elapsed_seconds == 1000
    assert state.suspended_seconds == 200


def test_stop_while_suspended_is_met():
    state = state_at(900, [ev(0, "start"), ev(100, "suspend"), ev(200, "stop")], 300)
    assert state.state == "met"
    assert state.elapsed_seconds == 100
    assert state.suspended_seconds == 100  # 200..300 fell after the stop
    assert state.due_at == at(1000)  # stop at 200 + 800 remaining


def test_repeated_events_are_no_ops():
    plain = [ev(0, "start"), ev(100, "suspend"), ev(300, "resume"), ev(500, "stop")]
    noisy = [
        ev(0, "start"),
        ev(100, "start"),
        ev(100, "suspend"),
        ev(200, "suspend"),
        ev(300, "resume"),
        ev(400, "resume"),
        ev(500, "stop"),
        ev(600, "stop"),
    ]
    expected = state_at(900, plain, 700)
    assert state_at(900, noisy, 700) == expected
    assert (expected.state, expected.elapsed_seconds, expected.suspended_seconds) == (
        "met",
        300,
        200,
    )
    assert expected.due_at == at(1100)


def test_stop_before_start_and_resume_without_suspend_are_ignored():
    state = state_at(900, [ev(0, "stop"), ev(0, "resume"), ev(100, "start")], 200)
    assert (state.state, state.elapsed_seconds, state.due_at) == ("running", 100, at(1000))


def test_events_in_any_order():
    events = [ev(400, "resume"), ev(0, "start"), ev(100, "suspend")]
    assert state_at(900, events, 500) == state_at(900, sorted(events, key=lambda e: e.at), 500)
    assert state_at(900, events, 500).elapsed_seconds == 200


def test_events_after_now_are_ignored():
    state = state_at(900, [ev(0, "start"), ev(500, "stop")], 300)
    assert (state.state, state.elapsed_seconds, state.due_at) == ("running", 300, at(900))


def test_event_at_now_counts():
    assert state_at(900, [ev(0, "start"), ev(300, "stop")], 300).state == "met"


def test_restart_continues_from_elapsed_time():
    state = state_at(900, [ev(0, "start"), ev(300, "stop"), ev(1000, "start")], 1200)
    assert state.state == "running"
    assert state.elapsed_seconds == 500  # 300 before the stop, 200 since the restart
    assert state.due_at == at(1600)


def test_restart_can_cross_the_target():
    state = state_at(900, [ev(0, "start"), ev(800, "stop"), ev(1000, "start")], 1200)
    assert (state.state, state.elapsed_seconds, state.breached_at) == ("breached", 1000, at(1100))


def test_suspension_while_stopped_counts_only_after_restart():
    events = [ev(0, "start"), ev(300, "stop"), ev(400, "suspend"), ev(500, "start")]
    events.append(ev(700, "resume"))
    state = state_at(900, events, 800)
    assert state.state == "running"
    assert state.elapsed_seconds == 400
    assert state.suspended_seconds == 200
    assert state.due_at == at(1300)


def test_same_instant_events_keep_their_given_order():
    reopened = state_at(900, [ev(0, "start"), ev(100, "stop"), ev(100, "start")], 200)
    assert (reopened.state, reopened.elapsed_seconds) == ("running", 200)
    # start first is a no-op (already running), then the stop holds.
    stopped = state_at(900, [ev(0, "start"), ev(100, "start"), ev(100, "stop")], 200)
    assert (stopped.state, stopped.elapsed_seconds) == ("met", 100)


def test_mixed_time_zones_compare_as_instants():
    shanghai = timezone(timedelta(hours=8))
    start = ClockEvent(datetime(2024, 3, 1, 17, 0, tzinfo=shanghai), "start")  # 09:00 UTC
    state = clock_state(900, [start], datetime(2024, 3, 1, 9, 10, tzinfo=UTC))
    assert state.elapsed_seconds == 600
    assert state.due_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)


def test_fractional_seconds():
    state = state_at(2, [ev(0, "start")], 0.5)
    assert state.elapsed_seconds == 0.5
    assert state.percent == 25.0
    assert state.due_at == at(2)


def test_percent_is_exact_at_round_marks():
    assert state_at(100, [ev(0, "start")], 29).percent == 29.0


@dataclass(frozen=True)
class HalfSpeed:
    """A stand-in business calendar: only every other second counts."""

    def counted_time(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta(0)) / 2

    def instant_after(self, start: datetime, counted: timedelta) -> datetime:
        return start + counted * 2


def test_clock_uses_the_calendar_seam():
    state = clock_state(100, [ev(0, "start")], at(100), calendar=HalfSpeed())
    assert state.elapsed_seconds == 50
    assert state.due_at == at(200)
    crossed = clock_state(100, [ev(0, "start")], at(300), calendar=HalfSpeed())
    assert crossed.breached_at == at(200)
    assert counted_seconds(at(0), at(10), HalfSpeed()) == 5


# --- thresholds ------------------------------------------------------------------------------


def percent_state(percent: int) -> ClockState:
    return state_at(100, [ev(0, "start")], percent)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (0, 40, []),
        (40, 80, [50, 75]),
        (80, 120, [100]),
        (0, 100, [50, 75, 100]),
        (49, 50, [50]),
        (50, 60, []),  # 50 was already reached before
        (75, 75, []),
        (80, 40, []),  # going back (e.g. a target raised) announces nothing
    ],
)
def test_thresholds_crossed(before: int, after: int, expected: list[int]):
    assert thresholds_crossed(percent_state(before), percent_state(after)) == expected


def test_thresholds_crossed_custom_marks_sorted_and_deduplicated():
    assert thresholds_crossed(percent_state(0), percent_state(95), (90, 25, 25)) == [25, 90]


# --- property: compare with a second-by-second oracle ----------------------------------------

Kind = str
Oracle = tuple[str, int, int, int | None, int | None]  # state, elapsed, suspended, due, breached


def oracle(target: int, events: list[tuple[int, Kind]], now: int) -> Oracle:
    """Walk the timeline one second at a time; everything in integer seconds from T0."""
    started = running = suspended = False
    elapsed = suspended_seconds = 0
    breached_at: int | None = None
    stopped_at: int | None = None
    for second in range(now + 1):
        for _, kind in [e for e in events if e[0] == second]:  # in the given order
            if kind == "start" and not running:
                started, running, stopped_at = True, True, None
            elif kind == "stop" and running:
                running, stopped_at = False, second
            elif kind in ("suspend", "resume"):
                suspended = kind == "suspend"
        if second == now:
            break
        # The second [second, second + 1) counts if the clock is running and not suspended.
        if running and suspended:
            suspended_seconds += 1
        elif running:
            elapsed += 1
            if elapsed == target:
                breached_at = second + 1
    if not started:
        return ("not_started", 0, suspended_seconds, None, None)
    if breached_at is not None:
        return ("breached", elapsed, suspended_seconds, breached_at, breached_at)
    if not running:
        assert stopped_at is not None
        return ("met", elapsed, suspended_seconds, stopped_at + target - elapsed, None)
    if suspended:
        return ("paused", elapsed, suspended_seconds, None, None)
    return ("running", elapsed, suspended_seconds, now + target - elapsed, None)


def seconds_from_t0(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = (value - T0).total_seconds()
    assert delta == int(delta)
    return int(delta)


KINDS: list[Kind] = ["start", "stop", "suspend", "resume"]
ZONES = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]


# Values on a coarse grid make coincidences (an event exactly at a breach, `now` exactly at
# the target) common enough to be tested every run; the fine grid covers everything else.
instants = st.one_of(st.integers(min_value=0, max_value=600), st.sampled_from(range(0, 601, 50)))
targets = st.one_of(st.integers(min_value=1, max_value=300), st.sampled_from(range(50, 301, 50)))


@settings(max_examples=500, deadline=None)
@given(
    target=targets,
    events=st.lists(st.tuples(instants, st.sampled_from(KINDS)), max_size=12),
    now=instants,
    zone=st.sampled_from(ZONES),
)
def test_clock_state_matches_second_by_second_oracle(
    target: int, events: list[tuple[int, Kind]], now: int, zone: timezone
):
    built = [ClockEvent(at(t).astimezone(zone), kind) for t, kind in events]  # type: ignore[arg-type]
    state = clock_state(target, built, at(now))
    expected_state, elapsed, suspended, due, breached_at = oracle(target, events, now)
    assert state.state == expected_state
    assert state.elapsed_seconds == elapsed
    assert state.suspended_seconds == suspended
    assert state.breached is (breached_at is not None)
    assert seconds_from_t0(state.breached_at) == breached_at
    assert seconds_from_t0(state.due_at) == due
    assert state.percent == pytest.approx(elapsed * 100 / target)


def test_threshold_instant_running_paused_and_reached():
    from datetime import UTC, datetime, timedelta

    from engine.domain.sla import ClockEvent, clock_state, has_reached, threshold_instant

    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    start = [ClockEvent(t0, "start")]
    now = t0 + timedelta(minutes=10)
    running = clock_state(3600, start, now)
    assert threshold_instant(running, 50, now) == t0 + timedelta(minutes=30)
    assert threshold_instant(running, 100, now) == t0 + timedelta(hours=1)
    assert not has_reached(running, 50)
    paused = clock_state(3600, [*start, ClockEvent(t0 + timedelta(minutes=5), "suspend")], now)
    assert threshold_instant(paused, 50, now) is None
    late = clock_state(3600, start, t0 + timedelta(minutes=45))
    assert threshold_instant(late, 50, t0 + timedelta(minutes=45)) == t0 + timedelta(minutes=45)
    assert has_reached(late, 75)
    stopped = clock_state(
        3600, [*start, ClockEvent(t0 + timedelta(minutes=20), "stop")], now + timedelta(hours=2)
    )
    assert threshold_instant(stopped, 50, now) is None
