"""SLA thresholds fire on time, exactly once, across workers and restarts."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select, update

from engine.persistence.db import Database
from engine.persistence.models import Event, Incident, SlaAnnouncement, SlaPolicy
from engine.services.context import ServiceContext
from engine.services.incidents import commands as incidents
from engine.services.incidents import timers
from engine.services.incidents.timers import fire_due
from engine.services.ops.worker import TimerWorker
from engine.services.people import users
from tests.conftest import PASSWORD
from tests.scenario import Scenario


def sla_events(api, incident_id, clocks=("response", "resolution")):
    detail = api.ok(api.get("manager", f"/incidents/{incident_id}"))
    return [
        (e["type"], e["clock"], e["percent"])
        for e in detail["events"]
        if e["type"] in ("sla_warning", "sla_breached") and e["clock"] in clocks
    ]


def test_thresholds_fire_once_in_order(api, ctx, clock):
    s = Scenario(api)  # unclassified: P1 targets, response 15 min, resolution 4 h
    assert fire_due(ctx) == 0
    clock.advance(minutes=7, seconds=30)
    assert fire_due(ctx) == 1
    assert sla_events(api, s.id) == [("sla_warning", "response", 50)]
    assert fire_due(ctx) == 0  # nothing twice
    clock.advance(minutes=8)
    assert fire_due(ctx) == 3  # and the service desk's stage clock (30 min) at 50 %
    assert sla_events(api, s.id)[1:] == [
        ("sla_warning", "response", 75),
        ("sla_breached", "response", 100),
    ]
    assert sla_events(api, s.id, clocks=("service_desk",)) == [("sla_warning", "service_desk", 50)]
    detail = api.ok(api.get("manager", f"/incidents/{s.id}"))
    assert detail["sla"]["breached"] is True
    breach = [e for e in detail["events"] if e["type"] == "sla_breached"][0]
    assert breach["actor"] == "system"
    assert abs(breach["delay_seconds"] - 30) < 1  # it fell due at 15:00, fired at 15:30


def test_suspension_pauses_thresholds_and_resume_reschedules(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="3", urgency="3")  # P5: resolution 168 h; response stopped
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "waiting"}))
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None and incident.sla_next_check_at is None
    clock.advance(hours=200)
    assert fire_due(ctx) == 0
    api.ok(api.post("desk", f"/incidents/{s.id}/resume"))
    clock.advance(hours=84)  # half of 168 h counted since the clock ran before suspension
    assert fire_due(ctx) == 4  # and the service desk's 24 h stage at 50, 75 and 100 %
    assert sla_events(api, s.id) == [("sla_warning", "resolution", 50)]


def test_closed_incident_has_nothing_scheduled(api, ctx, clock):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    s.confirm(True)
    s.feedback()
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None and incident.sla_next_check_at is None
    clock.advance(days=30)
    assert fire_due(ctx) == 0


def test_thousand_incidents_fire_exactly_once_across_workers_and_restart(ctx, clock, database_url):
    with ctx.db.write() as session:  # targets that fall due within a minute
        session.execute(
            update(SlaPolicy)
            .where(SlaPolicy.priority == 1)
            .values(
                response_seconds=20,
                resolution_seconds=40,
                stages={"service_desk": {"target_seconds": 30, "calendar": None}},
            )
        )
    reporter = users.actor_for_token(ctx, users.issue_token(ctx, "reporter", PASSWORD).token)
    ids = [
        incidents.create_incident(ctx, reporter, {"title": f"load {n}", "channel": "app"})["id"]
        for n in range(1000)
    ]
    clock.advance(seconds=15)  # response 50 % and 75 %, resolution 0-37 %
    first = TimerWorker(ctx)
    fire_due(ctx, batch=300)  # the first worker stops part-way ...
    first.stop()
    clock.advance(seconds=50)  # ... and everything else is due when two new ones start
    workers = [
        ServiceContext(db=Database(database_url), now=clock),
        ServiceContext(db=Database(database_url), now=clock),
    ]
    threads = [threading.Thread(target=TimerWorker(w).run_once) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker_ctx in workers:
        worker_ctx.db.dispose()
    with ctx.db.read() as session:
        per_incident = Counter(
            session.scalars(
                select(SlaAnnouncement.incident_id).where(SlaAnnouncement.percent > 0)
            ).all()
        )
        escalations = session.scalar(
            select(func.count(Event.id)).where(Event.type == "sla_escalated")
        )
        total_events = session.scalar(
            select(func.count(Event.id)).where(Event.type.in_(("sla_warning", "sla_breached")))
        )
        pending = session.scalar(
            select(func.count(Incident.id)).where(Incident.sla_next_check_at.is_not(None))
        )
    assert set(per_incident) == set(ids)
    # 3 clocks (response, resolution, the service desk's stage) × 50/75/100, once each
    assert set(per_incident.values()) == {9}
    assert total_events == 9000
    assert escalations == 1000  # P1: the resolution clock escalates once, at 75 %
    assert pending == 0


def test_resolution_escalation_starts_one_review_for_the_incident_manager(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="1", urgency="2")  # P2: resolution 12 h, escalates at 75 %
    s.desk_passes_on()
    clock.advance(hours=9)
    fire_due(ctx)
    tasks = s.open_tasks()
    assert tasks.count("sla_review") == 1
    types = s.event_types()
    assert types.count("sla_escalated") == 1
    clock.advance(hours=4)  # the breach fires but does not start a second review
    fire_due(ctx)
    assert s.open_tasks().count("sla_review") == 1
    assert ("sla_breached", "resolution", 100) in sla_events(api, s.id)
    # Closing cancels the open review like the other reviews.
    s.level2("solved")
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    events = s.refresh()["events"]
    assert s.incident["status"] == "closed"
    assert "sla_review" in [e.get("task") for e in events if e["type"] == "cancelled"]


def test_process_without_a_catcher_records_the_event_and_carries_on(api, ctx, clock):
    from engine.services.process.definitions import BUNDLED_PROCESS

    deaf = BUNDLED_PROCESS.read_bytes().replace(b'name="sla_escalation"', b'name="other_signal"')
    deployed = api.client.post(
        "/api/v1/process-definitions?note=no+catcher",
        data=deaf,
        headers={"Authorization": f"Bearer {api.tokens['designer']}"},
    )
    assert deployed.status_code == 201, deployed.get_json()
    s = Scenario(api)
    s.record(impact="1", urgency="1")  # P1: resolution 4 h
    clock.advance(hours=5)
    fire_due(ctx)
    assert "sla_review" not in s.open_tasks()
    assert ("sla_breached", "resolution", 100) in sla_events(api, s.id)
    assert "sla_escalated" not in s.event_types()
    assert fire_due(ctx) == 0


def test_suspension_ends_by_itself_at_the_resume_by_time(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    resume_by = (clock.now + timedelta(hours=2)).isoformat()
    api.ok(
        api.post(
            "desk",
            f"/incidents/{s.id}/suspend",
            {"reason": "vendor visit", "category": "awaiting_vendor", "resume_by": resume_by},
        )
    )
    clock.advance(hours=1)
    fire_due(ctx)
    assert s.refresh()["status"] == "suspended"
    clock.advance(hours=1, seconds=1)
    fire_due(ctx)
    detail = s.refresh()
    assert detail["status"] == "in_progress"
    resumed = [e for e in detail["events"] if e["type"] == "resumed"]
    assert [(e["actor"], e["reason"]) for e in resumed] == [("system", "resume-by time reached")]
    assert detail["sla"]["suspended_seconds"] == 7201


def test_priority_change_announces_newly_crossed_thresholds_once(api, ctx, clock):
    s = Scenario(api)
    s.record(impact="3", urgency="3")  # P5: resolution 168 h
    clock.advance(hours=3)
    assert fire_due(ctx) == 0
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "1"}))  # P1: 4 h
    assert fire_due(ctx) == 5  # and the service desk's stage: 3 h of 30 min, all three marks
    assert sla_events(api, s.id) == [
        ("sla_warning", "resolution", 50),
        ("sla_warning", "resolution", 75),
    ]
    # A downgrade never retracts what was announced, and nothing fires twice.
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "3", "urgency": "3"}))
    assert fire_due(ctx) == 0
    assert len(sla_events(api, s.id)) == 2
    assert len(sla_events(api, s.id, clocks=("service_desk",))) == 3


def test_an_escalation_interrupted_before_its_signal_is_delivered_next_pass(
    api, ctx, clock, monkeypatch
):
    """The signal is an engine step run after the announcements commit (no lock held
    while its scripts run): a worker that stops in between leaves it due, not lost."""
    s = Scenario(api)
    s.record(impact="1", urgency="2")  # P2: resolution 12 h, escalates at 75 %
    clock.advance(hours=9)
    real = timers._run_followup

    def worker_dies(*_args):
        raise OSError("the worker stopped here")

    monkeypatch.setattr(timers, "_run_followup", worker_dies)
    fire_due(ctx)
    assert ("sla_warning", "resolution", 75) in sla_events(api, s.id)
    assert "sla_escalated" not in s.event_types()
    monkeypatch.setattr(timers, "_run_followup", real)
    clock.advance(minutes=2)  # past the retry delay
    fire_due(ctx)
    assert s.event_types().count("sla_escalated") == 1
    assert s.open_tasks().count("sla_review") == 1
    clock.advance(hours=1)
    fire_due(ctx)
    assert s.event_types().count("sla_escalated") == 1  # once
