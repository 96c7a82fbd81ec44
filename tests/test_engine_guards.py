"""Guards around the engine: false completion, stale writes, task checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from engine.persistence.models import Event, Incident
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import apply_outcome
from engine.workflow.runtime import StepOutcome, TaskNotFound, TaskNotReady
from tests.scenario import Scenario


def test_completion_without_an_end_event_marks_the_incident_errored(api, ctx):
    s = Scenario(api)
    with ctx.db.write() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None
        log = EventLog(session, incident)
        false_completion = StepOutcome(state="{}", ready=[], finished=True, reached_end=False)
        apply_outcome(ctx, session, incident, log, false_completion, "system")
    detail = s.refresh()
    assert detail["status"] != "closed"
    assert detail["error"] == "the process reported completion without reaching an end event"
    assert detail["events"][-1]["type"] == "error"


def test_stale_write_is_refused(api, ctx):
    s = Scenario(api)
    first = ctx.db._sessions()
    second = ctx.db._sessions()
    try:
        b = second.get(Incident, s.id)
        second.commit()  # b keeps the version it read (expire_on_commit=False)
        a = first.get(Incident, s.id)
        assert a is not None and b is not None
        a.title = "first writer"
        first.commit()
        b.title = "second writer"
        with pytest.raises(StaleDataError):
            second.commit()
    finally:
        first.close()
        second.rollback()
        second.close()
    assert s.refresh()["title"] == "first writer"


def test_stale_write_maps_to_409(api, monkeypatch):
    s = Scenario(api)
    import engine.services.incidents.commands as incidents

    def lost_race(*args, **kwargs):
        raise StaleDataError("UPDATE statement on table 'incidents' expected to update 1 row")

    monkeypatch.setattr(incidents, "suspend", lost_race)
    response = api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "x"})
    assert response.status_code == 409
    assert "changed by someone else" in response.get_json()["error"]


def test_runtime_refuses_unknown_and_finished_tasks(api, ctx):
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    s.record()
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None
        from engine.persistence.models import InstanceState
        from engine.services.process.definitions import spec_source

        state = session.get(InstanceState, s.id)
        assert state is not None
        source = spec_source(incident.definition)
        # A completed task is gone from the compacted tree or no longer READY.
        with pytest.raises((TaskNotReady, TaskNotFound)):
            ctx.runtime.complete(source, state.state_json, task_id, {}, {})
        with pytest.raises(TaskNotFound):
            ctx.runtime.complete(source, state.state_json, "not-a-uuid", {}, {})
        with pytest.raises(TaskNotFound):
            ctx.runtime.complete(
                source, state.state_json, "00000000-0000-0000-0000-000000000000", {}, {}
            )


def test_every_state_change_writes_an_event(api, ctx):
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    s.desk_passes_on()
    with ctx.db.read() as session:
        rows = session.execute(
            select(Event.type, Event.data).where(Event.incident_id == s.id).order_by(Event.id)
        )
        types = [(t, data.get("stage")) if t.startswith("stage_") else t for t, data in rows]
    assert types == [
        "created",
        ("stage_entered", "service_desk"),
        "task_completed",
        "management_escalation",
        "task_completed",
        "technical_escalation",
        ("stage_left", "service_desk"),
        ("stage_entered", "level2"),
    ]


def test_a_failing_script_fails_the_step_cleanly(api):
    from engine.services.process.definitions import BUNDLED_PROCESS

    broken = BUNDLED_PROCESS.read_bytes().replace(
        b"itsm_priority(impact, urgency)", b"itsm_priority(impact, 7)"
    )
    deployed = api.client.post(
        "/api/v1/process-definitions?note=broken",
        data=broken,
        headers={"Authorization": f"Bearer {api.tokens['designer']}"},
    )
    assert deployed.status_code == 201, deployed.get_json()
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    response = api.post(
        "desk", f"/tasks/{task_id}/complete", {"category": "network", "impact": "1", "urgency": "1"}
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["details"][0]["element"] == "determine_priority"
    assert "urgency" in body["details"][0]["message"]
    # Nothing moved: the task is still there to be done once the process is fixed.
    assert s.open_tasks() == ["record_incident"]
    assert "task_completed" not in s.event_types()
