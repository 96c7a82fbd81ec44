"""The bundled process's answer timers (contract Part 2, "The reporter's own answers").

Nobody confirms the recovery within 5 working days of `resolved`: `system` completes
`confirm_recovery` with recovered: true; nobody answers the survey within 5 further working
days: the incident closes without one. Working days are the incident's resolution
calendar's (engine.domain.working_days); the worker pass `fire_due` fires them by the
app's clock (the test clock), not the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.domain.calendars import calendar_from_dict
from engine.domain.script_helpers import HELPER_NAMES, MAX_WORKING_DAYS, bind_helpers
from engine.domain.sla import TWENTY_FOUR_SEVEN
from engine.domain.working_days import due_after_suspensions, working_day_ends
from engine.persistence.models import Incident
from engine.services.incidents.timers import fire_due
from engine.workflow.sandbox import HelperTable
from engine.workflow.sandbox.executor import SandboxExecutor
from engine.workflow.sandbox.limits import SandboxScriptError
from tests.scenario import Scenario

TAIPEI = ZoneInfo("Asia/Taipei")
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {
    "name": "taipei_office",
    "timezone": "Asia/Taipei",
    "weekly": {
        day: [{"start": "09:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri")
    },
    "holidays": [],
    "extra_days_off": [],
    "makeup_working_days": [],
    "use_taiwan_holidays": False,
}
# A Wednesday, 10:00 in Taipei: ahead of the wall clock, so that only the app's clock
# decides when the timers fire, and within the test tokens' lifetime.
WEDNESDAY_10 = datetime(2027, 1, 6, 10, 0, tzinfo=TAIPEI).astimezone(UTC)


def office_calendar(**changes: Any) -> Any:
    data = {k: v for k, v in OFFICE.items() if k != "use_taiwan_holidays"}
    return calendar_from_dict({**data, **changes})


def resolved_incident(api: Any) -> Scenario:
    s = Scenario(api)
    s.record()  # impact 3, urgency 3: P5
    s.desk_resolves()
    assert s.open_tasks() == ["confirm_recovery"]
    return s


def events_of(s: Scenario, kind: str) -> list[dict[str, Any]]:
    return [e for e in s.refresh()["events"] if e["type"] == kind]


def test_no_answer_confirms_then_closes_without_a_survey(api, ctx, clock):
    s = resolved_incident(api)
    clock.advance(days=5, seconds=-60)
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    clock.advance(seconds=61)
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]
    confirmed = [e for e in events_of(s, "task_completed") if e["task"] == "confirm_recovery"]
    assert len(confirmed) == 1
    assert confirmed[0]["actor"] == "system"
    assert confirmed[0]["values"] == {"recovered": True}
    assert events_of(s, "cancelled") == []  # completed, not cancelled
    assert events_of(s, "reopened") == []
    assert s.incident["status"] == "resolved"

    clock.advance(days=5, seconds=-60)
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]
    clock.advance(seconds=61)
    fire_due(ctx)
    detail = s.refresh()
    assert detail["status"] == "closed"
    closed = events_of(s, "closed")
    assert len(closed) == 1 and closed[0]["actor"] == "system"
    assert closed[0]["survey"] == "none"
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None and incident.next_timer_at is None
    clock.advance(days=30)
    fire_due(ctx)
    assert len(events_of(s, "closed")) == 1


def test_the_desk_can_still_answer_both_by_hand_before(api, ctx, clock):
    s = resolved_incident(api)
    clock.advance(days=4)
    fire_due(ctx)
    s.confirm(True)
    confirmed = [e for e in events_of(s, "task_completed") if e["task"] == "confirm_recovery"]
    assert [e["actor"] for e in confirmed] == ["desk"]
    clock.advance(days=4)  # 8 days after resolution, 4 after the confirmation
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]
    s.feedback()
    assert s.incident["status"] == "closed"
    closed = events_of(s, "closed")
    assert [e["actor"] for e in closed] == ["desk"]
    assert "survey" not in closed[0] or closed[0]["survey"] is None


def test_an_unrecovered_answer_by_hand_still_reopens(api, ctx, clock):
    s = resolved_incident(api)
    clock.advance(days=1)
    s.confirm(False)
    assert s.open_tasks() == ["level2_investigation"]
    clock.advance(days=10)
    fire_due(ctx)
    # The timer went with the task (the SLA's own escalation may have come meanwhile).
    assert set(s.open_tasks()) - {"sla_review"} == {"level2_investigation"}
    assert [e["task"] for e in events_of(s, "task_completed")][-1] == "confirm_recovery"


def test_a_weekend_does_not_count_on_a_business_calendar(api, ctx, clock):
    s = business_incident(api, clock)
    # Thu, Fri, (weekend), Mon, Tue, Wed: due on Wednesday 13 January at 18:00 in Taipei.
    due = datetime(2027, 1, 13, 18, 0, tzinfo=TAIPEI)
    clock.now = datetime(2027, 1, 11, 18, 0, tzinfo=TAIPEI).astimezone(UTC)  # 5 days later
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    clock.now = (due - timedelta(minutes=1)).astimezone(UTC)
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    clock.now = due.astimezone(UTC)
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]
    # Thu 14, Fri 15, Mon 18, Tue 19, Wed 20 January.
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None and incident.next_timer_at is not None
        assert incident.next_timer_at == datetime(2027, 1, 20, 18, 0, tzinfo=TAIPEI)


def business_incident(api: Any, clock: Any) -> Scenario:
    api.ok(api.post("manager", "/sla/calendars", OFFICE), 201)
    api.ok(api.call("manager", "PUT", "/sla/policies/5", {"calendar": "taipei_office"}))
    clock.now = WEDNESDAY_10
    return resolved_incident(api)


def at_taipei(clock: Any, day: int, hour: int, minute: int = 0) -> None:
    clock.now = datetime(2027, 1, day, hour, minute, tzinfo=TAIPEI).astimezone(UTC)


def next_timer(ctx: Any, incident_id: int) -> datetime | None:
    with ctx.db.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.next_timer_at


def test_suspended_days_do_not_count(api, ctx, clock):
    s = business_incident(api, clock)
    at_taipei(clock, 7, 12)  # Thursday noon: no working day has ended yet
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "user on leave"}))
    at_taipei(clock, 11, 12)  # Monday noon
    api.ok(api.post("desk", f"/incidents/{s.id}/resume"))
    assert s.refresh()["status"] == "resolved"
    at_taipei(clock, 13, 18)  # when it was due without the suspension
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    # Counting goes on after Monday: Tue 12, Wed 13, Thu 14, Fri 15, Mon 18.
    assert next_timer(ctx, s.id) == datetime(2027, 1, 18, 18, 0, tzinfo=TAIPEI)
    at_taipei(clock, 18, 17, 59)
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    at_taipei(clock, 18, 18)
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]


def test_a_timer_due_while_suspended_waits_for_the_resumption(api, ctx, clock):
    s = business_incident(api, clock)
    at_taipei(clock, 8, 19)  # Friday evening: Thursday and Friday have counted
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "user on leave"}))
    at_taipei(clock, 13, 18)
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    assert next_timer(ctx, s.id) == clock.now + timedelta(hours=1)  # looks again later
    at_taipei(clock, 14, 10)  # Thursday: resumed; Fri 15, Mon 18, Tue 19 remain
    api.ok(api.post("desk", f"/incidents/{s.id}/resume"))
    clock.advance(hours=1)
    fire_due(ctx)
    assert s.open_tasks() == ["confirm_recovery"]
    assert next_timer(ctx, s.id) == datetime(2027, 1, 19, 18, 0, tzinfo=TAIPEI)
    at_taipei(clock, 19, 18)
    fire_due(ctx)
    assert s.open_tasks() == ["record_feedback"]


def test_due_after_suspensions_counts_only_unsuspended_days():
    office = office_calendar()
    thursday_noon = datetime(2027, 1, 7, 12, tzinfo=TAIPEI)
    monday_noon = datetime(2027, 1, 11, 12, tzinfo=TAIPEI)
    assert due_after_suspensions(office, WEDNESDAY_10, 5, []) == datetime(
        2027, 1, 13, 18, tzinfo=TAIPEI
    )
    moved = due_after_suspensions(office, WEDNESDAY_10, 5, [(thursday_noon, monday_noon)])
    assert moved == datetime(2027, 1, 18, 18, tzinfo=TAIPEI)
    assert due_after_suspensions(office, WEDNESDAY_10, 5, [(thursday_noon, None)]) is None
    # A suspension after the due moment changes nothing; one before the start neither.
    late = (datetime(2027, 1, 14, 9, tzinfo=TAIPEI), None)
    early = (datetime(2027, 1, 1, tzinfo=TAIPEI), datetime(2027, 1, 2, tzinfo=TAIPEI))
    expected = datetime(2027, 1, 13, 18, tzinfo=TAIPEI)
    assert due_after_suspensions(office, WEDNESDAY_10, 5, [late]) == expected
    assert due_after_suspensions(office, WEDNESDAY_10, 5, [early]) == expected


# --- the helper itself ---------------------------------------------------------------------


def test_working_day_ends_skip_weekends_and_holidays():
    office = office_calendar(holidays=["2027-01-08"])
    ends = working_day_ends(office, WEDNESDAY_10, 3)
    local = [end.astimezone(TAIPEI) for end in ends]
    assert [(d.day, d.hour) for d in local] == [(7, 18), (11, 18), (12, 18)]
    # Resolved on a Saturday: Monday is the first working day.
    saturday = datetime(2027, 1, 9, 11, 0, tzinfo=TAIPEI)
    assert working_day_ends(office, saturday, 1)[0] == datetime(2027, 1, 11, 18, tzinfo=TAIPEI)
    assert working_day_ends(TWENTY_FOUR_SEVEN, WEDNESDAY_10, 2) == [
        WEDNESDAY_10 + timedelta(days=1),
        WEDNESDAY_10 + timedelta(days=2),
    ]
    with pytest.raises(ValueError, match="fewer than"):
        working_day_ends(office_calendar(weekly={"mon": []}), WEDNESDAY_10, 1)


def _bound() -> dict[str, Any]:
    office = office_calendar()
    return bind_helpers(
        {(1, 1): 1},
        [1],
        lambda priority: {"response_due": None, "resolution_due": None},
        lambda: working_day_ends(office, WEDNESDAY_10, MAX_WORKING_DAYS),
    )


@pytest.mark.parametrize("days", [5, 1, MAX_WORKING_DAYS, 0, MAX_WORKING_DAYS + 1, True, "5", 2.0])
def test_the_sandboxed_helper_answers_as_the_bound_one(days: Any):
    bound = _bound()
    assert "itsm_working_days_later" in HELPER_NAMES
    try:
        expected: Any = ("ok", bound["itsm_working_days_later"](days))
    except ValueError as error:
        expected = ("error", str(error))
    with SandboxExecutor(workers=1) as executor:
        try:
            result, _ = executor.run(
                "itsm_working_days_later(days)",
                {"days": days},
                HelperTable.from_helpers(bound),
                "eval",
            )
            got: Any = ("ok", result)
        except SandboxScriptError as error:
            got = ("error", error.detail)
    assert got == expected
    if days == 5:
        assert datetime.fromisoformat(got[1]) == datetime(2027, 1, 13, 18, tzinfo=TAIPEI)


def test_without_a_bound_calendar_the_helper_refuses():
    bare = bind_helpers({(1, 1): 1}, [1], lambda priority: {})
    with pytest.raises(ValueError, match="no business calendar"):
        bare["itsm_working_days_later"](5)
