"""The caller's own answers over the API: confirmation (3.2) and survey (3.3)."""

from __future__ import annotations

from typing import Any

from engine.persistence.models import Incident
from engine.services.context import ServiceContext
from engine.services.incidents.timers import fire_due
from tests.conftest import TestClock
from tests.scenario import Scenario


def resolved(api: Any, reporter: str = "reporter") -> Scenario:
    scenario = Scenario(api, reporter=reporter)
    scenario.record()
    scenario.desk_resolves()
    assert scenario.open_tasks() == ["confirm_recovery"]
    return scenario


def confirmed(api: Any) -> Scenario:
    scenario = resolved(api)
    api.ok(api.post("reporter", f"/incidents/{scenario.id}/confirmation", {"recovered": True}))
    assert scenario.open_tasks() == ["record_feedback"]
    return scenario


def completed_by(scenario: Scenario, task: str) -> list[str]:
    return [
        e["actor"]
        for e in scenario.refresh()["events"]
        if e["type"] == "task_completed" and e.get("task") == task
    ]


def test_the_caller_confirms_even_when_the_desk_claimed_the_task(api: Any) -> None:
    scenario = resolved(api)
    task_id = scenario.task_id("confirm_recovery")
    api.ok(api.post("desk", f"/tasks/{task_id}/claim"))
    answer = api.ok(
        api.post("reporter", f"/incidents/{scenario.id}/confirmation", {"recovered": True})
    )
    # The answer is the caller's view: the desk agent appears as their lane role.
    assert [t["name"] for t in answer["tasks"]] == ["record_feedback"]
    assert completed_by(scenario, "confirm_recovery") == ["reporter"]
    assert scenario.incident["status"] == "resolved"


def test_not_recovered_reopens_and_the_comment_is_a_caller_note(api: Any) -> None:
    scenario = resolved(api)
    body = {"recovered": False, "comment": "Still no mail on my laptop"}
    api.ok(api.post("reporter", f"/incidents/{scenario.id}/confirmation", body))
    assert "reopened" in scenario.event_types()
    assert scenario.open_tasks() == ["level2_investigation"]
    notes = api.ok(api.get("reporter", f"/incidents/{scenario.id}/notes"))
    assert [(n["author"], n["text"], n["internal"]) for n in notes] == [
        ("reporter", "Still no mail on my laptop", False)
    ]


def test_recovered_must_be_a_boolean(api: Any) -> None:
    scenario = resolved(api)
    path = f"/incidents/{scenario.id}/confirmation"
    for body, field in (
        ({}, "recovered"),
        ({"recovered": "false"}, "recovered"),
        ({"recovered": 0}, "recovered"),
        ({"recovered": True, "comment": "x" * 20_001}, "comment"),
        ({"recovered": True, "mood": "fine"}, "mood"),
    ):
        response = api.post("reporter", path, body)
        assert response.status_code == 422, body
        assert field in response.get_json()["details"], body
    assert api.post("reporter", path, ["recovered"]).status_code == 422
    # Nothing was completed by the refused answers.
    assert scenario.open_tasks() == ["confirm_recovery"]


def test_409_names_the_state_when_nothing_waits_for_the_answer(api: Any) -> None:
    scenario = Scenario(api)
    response = api.post("reporter", f"/incidents/{scenario.id}/confirmation", {"recovered": True})
    assert response.status_code == 409
    assert response.get_json()["details"] == {"status": "new"}
    assert "new" in response.get_json()["error"]
    survey = api.post("reporter", f"/incidents/{scenario.id}/survey", {"satisfaction": "4"})
    assert survey.status_code == 409


def test_the_survey_closes_the_incident(api: Any) -> None:
    scenario = confirmed(api)
    body = {"satisfaction": "4", "feedback": "Quick, thanks"}
    answer = api.ok(api.post("reporter", f"/incidents/{scenario.id}/survey", body))
    assert answer["status"] == "closed"
    assert completed_by(scenario, "record_feedback") == ["reporter"]
    values = [
        e["values"]
        for e in scenario.refresh()["events"]
        if e["type"] == "task_completed" and e.get("task") == "record_feedback"
    ]
    assert values == [{"satisfaction": "4", "feedback": "Quick, thanks"}]
    again = api.post("reporter", f"/incidents/{scenario.id}/survey", body)
    assert again.status_code == 409


def test_the_survey_is_checked_against_the_form(api: Any) -> None:
    scenario = confirmed(api)
    path = f"/incidents/{scenario.id}/survey"
    for body, field in (
        ({"satisfaction": "6"}, "satisfaction"),
        ({}, "satisfaction"),
        ({"satisfaction": "3", "rating": 3}, "rating"),
    ):
        response = api.post("reporter", path, body)
        assert response.status_code == 422, body
        assert field in response.get_json()["details"], body
    assert scenario.open_tasks() == ["record_feedback"]


def close_without_survey(ctx: ServiceContext, clock: TestClock, scenario: Scenario) -> None:
    """The bundled diagram's timer: nobody answers the survey for 5 more working days
    (the default policy's 24x7 calendar), and the worker closes the incident."""
    clock.advance(days=5, seconds=1)
    fire_due(ctx)
    assert scenario.refresh()["status"] == "closed"
    assert completed_by(scenario, "record_feedback") == []


def test_a_late_survey_is_kept_once_and_does_not_reopen(
    api: Any, ctx: ServiceContext, clock: TestClock
) -> None:
    scenario = confirmed(api)
    close_without_survey(ctx, clock, scenario)
    clock.advance(days=29)
    path = f"/incidents/{scenario.id}/survey"
    assert api.post("reporter", path, {"satisfaction": "9"}).status_code == 422
    body = {"satisfaction": "2", "feedback": "Took a week"}
    answer = api.ok(api.post("reporter", path, body))
    assert answer["status"] == "closed"
    events = scenario.refresh()["events"]
    late = [e for e in events if e["type"] == "survey_answered"]
    assert [(e["actor"], e["satisfaction"], e["feedback"]) for e in late] == [
        ("reporter", "2", "Took a week")
    ]
    assert "reopened" not in [e["type"] for e in events]
    with ctx.db.read() as session:
        incident = session.get(Incident, scenario.id)
        assert incident is not None and incident.survey_answered_at == ctx.now()
    second = api.post("reporter", path, body)
    assert second.status_code == 409
    assert "already" in second.get_json()["error"]


def test_a_late_survey_after_30_days_is_refused(
    api: Any, ctx: ServiceContext, clock: TestClock
) -> None:
    scenario = confirmed(api)
    close_without_survey(ctx, clock, scenario)
    clock.advance(days=30, seconds=1)
    response = api.post("reporter", f"/incidents/{scenario.id}/survey", {"satisfaction": "3"})
    assert response.status_code == 409


def test_no_late_survey_after_a_survey(api: Any) -> None:
    scenario = confirmed(api)
    scenario.feedback("5")  # by the desk, after a phone call
    response = api.post("reporter", f"/incidents/{scenario.id}/survey", {"satisfaction": "3"})
    assert response.status_code == 409


def test_others_cannot_answer(api: Any) -> None:
    scenario = resolved(api)
    path = f"/incidents/{scenario.id}/confirmation"
    # Another reporter does not learn that the incident exists; staff and vendors who
    # see it are told this is the caller's answer (the desk uses the task).
    assert api.post("reporter2", path, {"recovered": True}).status_code == 404
    assert api.post("desk", path, {"recovered": True}).status_code == 403
    assert api.post("manager", path, {"recovered": True}).status_code == 403
    assert api.post(None, path, {"recovered": True}).status_code == 401
    assert api.post("reporter2", f"/incidents/{scenario.id}/survey", {}).status_code == 404
    assert api.post("reporter", "/incidents/999999/confirmation", {}).status_code == 404
    assert scenario.open_tasks() == ["confirm_recovery"]


def test_a_caller_named_by_the_desk_answers(api: Any) -> None:
    created = api.ok(
        api.post(
            "desk",
            "/incidents",
            {"title": "Printer jam", "channel": "phone", "caller": "reporter2"},
        ),
        201,
    )
    scenario = Scenario.__new__(Scenario)
    scenario.api, scenario.id, scenario.incident = api, created["id"], created
    scenario.record()
    scenario.desk_resolves()
    path = f"/incidents/{scenario.id}/confirmation"
    # The desk agent who created it is not the caller.
    assert api.post("desk", path, {"recovered": True}).status_code == 403
    api.ok(api.post("reporter2", path, {"recovered": True}))
    assert completed_by(scenario, "confirm_recovery") == ["reporter2"]


def test_the_desk_can_still_complete_both_tasks(api: Any) -> None:
    scenario = resolved(api)
    scenario.confirm(True)
    scenario.feedback("5")
    assert scenario.refresh()["status"] == "closed"
    assert completed_by(scenario, "confirm_recovery") == ["desk"]
    assert completed_by(scenario, "record_feedback") == ["desk"]


def test_an_answer_after_the_desk_answered_is_a_conflict(api: Any) -> None:
    scenario = resolved(api)
    scenario.confirm(True)
    response = api.post("reporter", f"/incidents/{scenario.id}/confirmation", {"recovered": True})
    assert response.status_code == 409
    assert response.get_json()["details"] == {"status": "resolved"}
