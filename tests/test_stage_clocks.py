"""Stage clocks: time with each tier, and why each clock shows what it shows."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.persistence.models import Event, Incident
from engine.services.incidents.timers import fire_due
from tests.scenario import Scenario

MINUTE = 60
HOUR = 3600
TAIPEI = ZoneInfo("Asia/Taipei")


def clocks(scenario: Scenario) -> dict[str, dict]:
    return {c["clock"]: c for c in scenario.refresh()["sla"]["clocks"]}


def stage_of(ctx, incident_id: int) -> str | None:
    with ctx.db.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.stage


def test_stage_clocks_add_up_the_time_with_each_tier_across_loops(api, ctx, clock):
    s = Scenario(api)
    assert stage_of(ctx, s.id) == "service_desk"
    clock.advance(minutes=10)
    s.record(impact="2", urgency="2")  # P3: desk 4 h, level 2 12 h, vendor 24 h
    clock.advance(minutes=20)
    s.desk_passes_on()
    assert stage_of(ctx, s.id) == "level2"
    clock.advance(hours=1)
    s.level2("escalate_vendor")
    assert stage_of(ctx, s.id) == "vendor"
    clock.advance(hours=3)
    s.complete("vendor_investigation", {"solution": "Apply firmware 2.1"})
    assert stage_of(ctx, s.id) == "level2"  # the vendor's solution goes back to level 2
    clock.advance(minutes=30)
    api.ok(api.post("l2", f"/incidents/{s.id}/suspend", {"reason": "waiting for a part"}))
    clock.advance(hours=5)  # suspended: no stage counts
    api.ok(api.post("l2", f"/incidents/{s.id}/resume"))
    clock.advance(minutes=30)
    s.resolve("level2")
    assert stage_of(ctx, s.id) is None  # resolved: no tier holds it
    clock.advance(hours=1)  # confirming with the reporter is nobody's stage time
    s.confirm(False)  # not recovered: back to level 2, which continues its clock
    assert stage_of(ctx, s.id) == "level2"
    clock.advance(hours=2)
    state = clocks(s)
    assert state["service_desk"]["elapsed_seconds"] == 30 * MINUTE
    assert state["service_desk"]["state"] == "met"
    assert state["vendor"]["elapsed_seconds"] == 3 * HOUR
    assert state["level2"]["elapsed_seconds"] == (1 + 0.5 + 0.5 + 2) * HOUR
    assert state["level2"]["state"] == "running"
    assert state["level2"]["paused_seconds"] == 5 * HOUR
    assert state["level2"]["target_seconds"] == 12 * HOUR
    assert state["level3"]["state"] == "not_started"
    modes = [seg["mode"] for seg in state["level2"]["segments"]]
    assert modes == ["running", "stopped", "running", "paused", "running", "stopped", "running"]
    # The stage events are in the incident's history, each naming its tier.
    with ctx.db.read() as session:
        rows = session.execute(
            select(Event.type, Event.data)
            .where(Event.incident_id == s.id, Event.type.in_(("stage_entered", "stage_left")))
            .order_by(Event.id)
        ).all()
    assert [(t, d["stage"]) for t, d in rows] == [
        ("stage_entered", "service_desk"),
        ("stage_left", "service_desk"),
        ("stage_entered", "level2"),
        ("stage_left", "level2"),
        ("stage_entered", "vendor"),
        ("stage_left", "vendor"),
        ("stage_entered", "level2"),
        ("stage_left", "level2"),
        ("stage_entered", "level2"),
    ]


def test_a_stage_breach_is_recorded_for_its_lane_not_as_the_incidents_sla(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="1", urgency="1")  # P1: level 2 may hold it 2 h, resolution 4 h
    s.desk_passes_on()
    clock.advance(hours=2, seconds=1)
    fire_due(ctx)
    detail = s.refresh()
    breaches = [e for e in detail["events"] if e["type"] == "sla_breached"]
    assert [(e["clock"], e.get("lane")) for e in breaches] == [("level2", "level2")]
    assert detail["sla"]["breached"] is False  # the incident's own targets still hold
    assert clocks(s)["level2"]["announced"] == [50, 75, 100]
    assert fire_due(ctx) == 0  # once


def test_reassignment_within_level2_keeps_one_running_stage(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="2", urgency="2")
    s.desk_passes_on()
    for _ in range(3):
        clock.advance(minutes=10)
        s.level2("reassign", reassign_to="l2", reassign_reason="shift change")
    assert stage_of(ctx, s.id) == "level2"
    level2 = clocks(s)["level2"]
    assert level2["elapsed_seconds"] == 30 * MINUTE
    assert [seg["mode"] for seg in level2["segments"]] == ["running"]


def test_stage_targets_apply_to_new_incidents_with_their_own_calendar(api, clock):
    clock.now = datetime(2026, 12, 4, 17, 0, tzinfo=TAIPEI)  # a Friday, 17:00 in Taipei
    changed = api.ok(
        api.call(
            "manager",
            "PUT",
            "/sla/policies/3",
            {
                "stages": {
                    "level2": {"target_seconds": 4 * HOUR, "calendar": "taiwan_business_hours"}
                }
            },
        )
    )
    assert changed["stages"]["level2"] == {
        "target_seconds": 4 * HOUR,
        "calendar": "taiwan_business_hours",
    }
    s = Scenario(api)
    s.record(impact="2", urgency="2")
    s.desk_passes_on()
    level2 = clocks(s)["level2"]
    assert (level2["calendar"], level2["policy_version"]) == ("taiwan_business_hours", 2)
    # Friday 17:00-18:00 counts, then Monday 09:00-12:00: due Monday at noon.
    due = datetime.fromisoformat(level2["due_at"]).astimezone(TAIPEI)
    assert due == datetime(2026, 12, 7, 12, 0, tzinfo=TAIPEI)
    assert level2["due"]["reason"] == "running"
    assert level2["due"]["remaining_seconds"] == 4 * HOUR
    # The 67 wall-clock hours to Monday noon hold 4 working hours; the rest is non-working.
    assert level2["due"]["non_working_seconds_until_due"] == 63 * HOUR
    # The resolution clock still counts around the clock (the policy's calendar).
    assert clocks(s)["resolution"]["calendar"] == "24x7"


def test_explain_segments_retrace_the_figures_in_working_time(api, clock):
    api.ok(api.call("manager", "PUT", "/sla/policies/3", {"calendar": "taiwan_business_hours"}))
    clock.now = datetime(2026, 12, 4, 17, 0, tzinfo=TAIPEI)  # Friday 17:00
    s = Scenario(api)
    s.record(impact="2", urgency="2")
    clock.now = datetime(2026, 12, 7, 10, 0, tzinfo=TAIPEI)  # Monday 10:00
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "reporter away"}))
    clock.now = datetime(2026, 12, 7, 11, 0, tzinfo=TAIPEI)
    resolution = clocks(s)["resolution"]
    assert resolution["state"] == "paused" and resolution["due_at"] is None
    assert resolution["due"]["reason"] == "paused"
    first, second = resolution["segments"]
    assert (first["mode"], first["wall_seconds"]) == ("running", 65 * HOUR)
    assert (first["working_seconds"], first["non_working_seconds"]) == (2 * HOUR, 63 * HOUR)
    assert (second["mode"], second["working_seconds"]) == ("paused", HOUR)
    assert resolution["elapsed_seconds"] == first["elapsed_after"] == 2 * HOUR
    assert resolution["paused_seconds"] == HOUR
    assert resolution["due"]["remaining_seconds"] == 22 * HOUR


def test_suspended_time_is_attributed_per_person(api, clock):
    s = Scenario(api)
    s.record()
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "r", "category": "other"}))
    clock.advance(hours=1)
    api.ok(api.post("l2", f"/incidents/{s.id}/resume"))
    clock.advance(hours=1)
    api.ok(api.post("l2", f"/incidents/{s.id}/suspend", {"reason": "part"}))
    clock.advance(hours=2)  # still suspended: counted up to now
    suspensions = s.refresh()["sla"]["suspensions"]
    assert [(p["by"], p["resumed_by"], p["seconds"]) for p in suspensions["periods"]] == [
        ("desk", "l2", HOUR),
        ("l2", None, 2 * HOUR),
    ]
    assert [(p["username"], p["seconds"], p["suspensions"]) for p in suspensions["per_person"]] == [
        ("l2", 2 * HOUR, 1),
        ("desk", HOUR, 1),
    ]
    assert s.incident["sla"]["suspended_seconds"] == 3 * HOUR


def test_reporters_never_see_the_tier_clocks_or_who_suspended(api):
    s = Scenario(api)
    assert "clocks" not in s.incident["sla"] and "suspensions" not in s.incident["sla"]
    own = api.ok(api.get("reporter", f"/incidents/{s.id}"))
    assert "clocks" not in own["sla"] and "suspensions" not in own["sla"]
    assert "clocks" in s.refresh()["sla"]  # staff do
