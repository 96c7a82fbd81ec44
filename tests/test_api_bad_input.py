"""Bad input: malformed bodies, unknown ids, wrong roles, invalid values, races."""

from __future__ import annotations

import pytest

from tests.scenario import Scenario


def test_malformed_json_is_400(api):
    response = api.call(
        "reporter",
        "POST",
        "/incidents",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "malformed JSON" in response.get_json()["error"]
    assert api.post("reporter", "/incidents").status_code == 400  # no body at all


def test_missing_or_bad_token_is_401(api):
    assert api.get(None, "/incidents").status_code == 401
    response = api.client.get("/api/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.get_json()["error"]


def test_api_ignores_browser_session_cookie(api):
    with api.client.session_transaction() as session:
        session["_user_id"] = "1"
    assert api.get(None, "/incidents").status_code == 401


def test_token_login(api):
    ok = api.client.post(
        "/api/v1/auth/token", json={"username": "desk", "password": "correct horse battery"}
    )
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["token"] and "+00:00" in body["expires_at"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert api.client.get("/api/v1/tasks", headers=headers).status_code == 200
    bad = api.client.post("/api/v1/auth/token", json={"username": "desk", "password": "x"})
    assert bad.status_code == 401
    missing = api.client.post("/api/v1/auth/token", json={"username": "desk"})
    assert missing.status_code == 422
    assert set(missing.get_json()["details"]) == {"password"}


def test_token_expires(api, clock):
    clock.advance(days=401)  # the template's tokens were issued for 400 days
    assert api.get("desk", "/tasks").status_code == 401


def test_deactivating_a_user_revokes_tokens(api, ctx):
    from engine.services.people.users import set_active

    assert api.get("desk", "/tasks").status_code == 200
    set_active(ctx, "desk", False)
    assert api.get("desk", "/tasks").status_code == 401


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"title": "", "channel": "web"}, {"title"}),
        ({"title": "x", "channel": "fax"}, {"channel"}),
        ({"title": 5, "channel": "web", "colour": "red"}, {"title", "colour"}),
        ({"title": "x" * 301, "channel": "web"}, {"title"}),
        ([], set()),
    ],
)
def test_invalid_incident_is_422_naming_fields(api, body, fields):
    response = api.post("reporter", "/incidents", body)
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == fields


def test_unknown_and_malformed_ids_are_404(api):
    assert api.get("desk", "/incidents/999999").status_code == 404
    assert api.get("desk", "/incidents/abc").status_code == 404
    assert api.get("desk", "/tasks/not-a-uuid").status_code == 404
    assert (
        api.post("desk", "/tasks/00000000-0000-0000-0000-000000000000/complete", {}).status_code
        == 404
    )
    assert (
        api.get("designer", "/process-definitions/incident_management/99.bpmn").status_code == 404
    )


def test_reporter_cannot_see_someone_elses_incident(api):
    s = Scenario(api, reporter="reporter")
    assert api.get("reporter2", f"/incidents/{s.id}").status_code == 404
    assert api.ok(api.get("reporter2", "/incidents"))["total"] == 0
    assert api.ok(api.get("reporter", "/incidents"))["total"] == 1


def test_wrong_lane_is_403(api):
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    response = api.post(
        "l2", f"/tasks/{task_id}/complete", {"category": "network", "impact": "1", "urgency": "1"}
    )
    assert response.status_code == 403
    assert api.get("reporter", f"/tasks/{task_id}").status_code == 403
    assert api.post("reporter", f"/tasks/{task_id}/claim").status_code == 403
    assert s.open_tasks() == ["record_incident"]


def test_invalid_form_values_are_422_naming_each_field(api):
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    response = api.post(
        "desk",
        f"/tasks/{task_id}/complete",
        {"category": "toaster", "impact": "7", "colour": "red"},
    )
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert set(details) == {"category", "impact", "urgency", "colour"}
    assert "must be one of" in details["category"]
    assert details["urgency"] == "is required"
    assert s.open_tasks() == ["record_incident"]
    assert "task_completed" not in s.event_types()


def test_required_if_and_reassign_target_are_checked(api):
    s = Scenario(api)
    s.record()
    task_id = s.task_id("initial_handling")
    response = api.post("desk", f"/tasks/{task_id}/complete", {"resolved_at_desk": True})
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {"resolution"}
    s.desk_passes_on()
    task_id = s.task_id("level2_investigation")
    response = api.post("l2", f"/tasks/{task_id}/complete", {"level2_outcome": "reassign"})
    assert set(response.get_json()["details"]) == {"reassign_reason"}
    response = api.post(
        "l2",
        f"/tasks/{task_id}/complete",
        {"level2_outcome": "reassign", "reassign_reason": "x", "reassign_to": "desk"},
    )
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {"reassign_to"}


def test_completing_twice_is_409(api):
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    values = {"category": "network", "impact": "2", "urgency": "2"}
    assert api.post("desk", f"/tasks/{task_id}/complete", values).status_code == 200
    again = api.post("desk", f"/tasks/{task_id}/complete", values)
    assert again.status_code == 409
    assert "completed" in again.get_json()["error"]


def test_claim_release_assign(api):
    s = Scenario(api)
    task_id = s.task_id("record_incident")
    claimed = api.ok(api.post("desk", f"/tasks/{task_id}/claim"))
    assert claimed["claimed_by"] == "desk"
    assert api.post("desk2", f"/tasks/{task_id}/claim").status_code == 409
    values = {"category": "network", "impact": "2", "urgency": "2"}
    assert api.post("desk2", f"/tasks/{task_id}/complete", values).status_code == 409
    assert api.post("desk2", f"/tasks/{task_id}/release").status_code == 409
    assert api.ok(api.post("desk", f"/tasks/{task_id}/release"))["claimed_by"] is None
    bad = api.post("desk", f"/tasks/{task_id}/assign", {"username": "l2"})
    assert bad.status_code == 422 and "username" in bad.get_json()["details"]
    assigned = api.ok(api.post("desk", f"/tasks/{task_id}/assign", {"username": "desk2"}))
    assert assigned["claimed_by"] == "desk2"
    assert api.post("desk", f"/tasks/{task_id}/complete", values).status_code == 409
    assert api.post("desk2", f"/tasks/{task_id}/complete", values).status_code == 200
    types = s.event_types()
    assert [t for t in types if t in ("claimed", "released", "assigned")] == [
        "claimed",
        "released",
        "assigned",
    ]


def test_task_listing_and_form(api):
    s = Scenario(api)
    listing = api.ok(api.get("desk", "/tasks"))
    assert [(t["name"], t["lane"], t["incident_id"]) for t in listing] == [
        ("record_incident", "service_desk", s.id)
    ]
    assert set(listing[0]) >= {"id", "name", "lane", "incident_id", "title", "claimed_by"}
    assert api.ok(api.get("l2", "/tasks")) == []
    task = api.ok(api.get("desk", f"/tasks/{listing[0]['id']}"))
    fields = {f["id"]: f for f in task["form"]["fields"]}
    assert list(fields) == ["category", "impact", "urgency", "callback_done"]
    assert fields["callback_done"]["required"] is False
    assert fields["impact"]["type"] == "enum"
    assert fields["impact"]["required"] is True
    assert [o["id"] for o in fields["impact"]["options"]] == ["1", "2", "3"]
    assert task["documentation"]


def test_patch_recomputes_priority_and_due_times(api, clock):
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    before = s.refresh()
    assert before["priority"] == 5
    patched = api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "1"}))
    assert patched["priority"] == 1
    assert patched["major"] is True
    assert patched["sla"]["resolution_due"] < before["sla"]["resolution_due"]
    events = [e for e in s.refresh()["events"] if e["type"] == "priority_changed"]
    assert [(e["from"], e["to"]) for e in events] == [(5, 1)]
    # Later scripts and gateways see the new classification.
    assert api.patch("desk", f"/incidents/{s.id}", {"impact": "9"}).status_code == 422
    assert api.patch("desk", f"/incidents/{s.id}", {"owner": "x"}).status_code == 422
    assert api.patch("reporter", f"/incidents/{s.id}", {"impact": "2"}).status_code == 403
    assert api.patch("desk", f"/incidents/{s.id}", {"category": "access"}).status_code == 200
    assert s.refresh()["category"] == "access"


def test_suspend_and_resume_stop_the_clocks(api, clock):
    s = Scenario(api)
    s.record(impact="2", urgency="2")  # P3: resolution 24 h
    due = s.refresh()["sla"]["resolution_due"]
    suspended = api.ok(
        api.post(
            "desk",
            f"/incidents/{s.id}/suspend",
            {"reason": "waiting for the user", "category": "awaiting_reporter"},
        )
    )
    assert suspended["status"] == "suspended"
    assert suspended["sla"]["suspended"] is True
    assert api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "again"}).status_code == 409
    clock.advance(hours=2)
    assert s.refresh()["sla"]["suspended_seconds"] == 7200
    # The reporter's note resumes an incident waiting for the reporter.
    api.ok(
        api.post(
            "reporter", f"/incidents/{s.id}/notes", {"text": "here you go", "internal": False}
        ),
        201,
    )
    after = s.refresh()
    assert after["status"] == "in_progress"
    from datetime import datetime, timedelta

    moved = datetime.fromisoformat(after["sla"]["resolution_due"]) - datetime.fromisoformat(due)
    assert moved == timedelta(hours=2)
    assert api.post("desk", f"/incidents/{s.id}/resume").status_code == 409
    bad = api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "", "category": "lunch"})
    assert bad.status_code == 422
    assert set(bad.get_json()["details"]) == {"reason", "category"}
    assert api.post("reporter", f"/incidents/{s.id}/suspend", {"reason": "x"}).status_code == 403


def test_completing_a_task_of_a_suspended_incident_resumes_it_first(api):
    s = Scenario(api)
    s.record()
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "vendor call"}))
    s.desk_passes_on()
    types = s.event_types()
    i = types.index("resumed")
    assert types[i + 1] == "task_completed"
    assert s.incident["status"] == "in_progress"


def test_notes_visibility(api):
    s = Scenario(api)
    api.ok(
        api.post("desk", f"/incidents/{s.id}/notes", {"text": "internal", "internal": True}), 201
    )
    api.ok(api.post("desk", f"/incidents/{s.id}/notes", {"text": "public", "internal": False}), 201)
    assert (
        api.post(
            "reporter", f"/incidents/{s.id}/notes", {"text": "x", "internal": True}
        ).status_code
        == 403
    )
    assert (
        api.post(
            "reporter2", f"/incidents/{s.id}/notes", {"text": "x", "internal": False}
        ).status_code
        == 404
    )
    assert [n["text"] for n in api.ok(api.get("reporter", f"/incidents/{s.id}/notes"))] == [
        "public"
    ]
    assert len(api.ok(api.get("desk", f"/incidents/{s.id}/notes"))) == 2
    assert api.post("desk", f"/incidents/{s.id}/notes", {"text": " "}).status_code == 422


def test_closed_incident_cannot_be_suspended_or_patched(api):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    s.confirm(True)
    s.feedback()
    assert api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "x"}).status_code == 409
    assert api.patch("desk", f"/incidents/{s.id}", {"impact": "1"}).status_code == 409


def test_incident_list_filters_and_paging(api):
    ids = [Scenario(api).id for _ in range(3)]
    first = Scenario(api)
    first.record(impact="1", urgency="2")
    listing = api.ok(api.get("desk", "/incidents?status=new&limit=2"))
    assert listing["total"] == 3
    assert [i["id"] for i in listing["items"]] == sorted(ids, reverse=True)[:2]
    assert api.ok(api.get("desk", "/incidents?priority=2"))["items"][0]["id"] == first.id
    bad = api.get("desk", "/incidents?status=lost&limit=0&priority=x")
    assert bad.status_code == 422
    assert set(bad.get_json()["details"]) == {"status", "limit", "priority"}


def test_incident_detail_shape(api):
    s = Scenario(api, channel="wechat")
    detail = api.ok(api.get("reporter", f"/incidents/{s.id}"))
    for key in (
        "id",
        "number",
        "title",
        "description",
        "contact",
        "channel",
        "category",
        "status",
        "phase",
        "priority",
        "impact",
        "urgency",
        "major",
        "sla",
        "tasks",
        "links",
        "events",
        "process",
    ):
        assert key in detail
    assert set(detail["sla"]) == {
        "response_due",
        "resolution_due",
        "suspended",
        "suspended_seconds",
        "breached",
        "policy",
    }
    assert detail["sla"]["policy"] is None  # not classified yet
    assert detail["process"] == {"key": "incident_management", "version": 1}
    assert detail["events"][0]["type"] == "created"
    assert detail["events"][0]["actor"] == "reporter"
    assert "+00:00" in detail["events"][0]["at"]
