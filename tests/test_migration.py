"""Moving open incidents to a newer version: preview, move, refuse, and keep working."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.persistence.models import Event, Incident
from engine.services.incidents.timers import fire_due
from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.test_definitions_api_and_cli import deploy

BUNDLED = BUNDLED_PROCESS.read_bytes()
# Version 2 renames a step (labels never block) and adds a field to level 2's form.
V2 = BUNDLED.replace(b'name="Initial handling"', b'name="First-line handling"').replace(
    b'<camunda:formField id="level2_outcome"',
    b'<camunda:formField id="workaround" label="Workaround" type="string" />\n'
    b'          <camunda:formField id="level2_outcome"',
)
PREVIEW = "/process-definitions/incident_management/2/migration-preview"
MIGRATE = "/process-definitions/incident_management/2/migrate"


@pytest.fixture
def incidents(api):
    """One incident at initial_handling, one at level 2 investigation, one closed."""
    at_desk = Scenario(api)
    at_desk.record()
    at_level2 = Scenario(api)
    at_level2.record()
    at_level2.desk_passes_on()
    closed = Scenario(api)
    closed.record()
    closed.desk_resolves()
    closed.confirm(True)
    closed.feedback()
    assert deploy(api, "designer", V2, "level 2 records a workaround").status_code == 201
    return at_desk, at_level2, closed


def test_preview_lists_open_incidents_with_position_and_verdict(api, incidents):
    at_desk, at_level2, _closed = incidents
    preview = {p["incident_id"]: p for p in api.ok(api.get("manager", PREVIEW))}
    assert set(preview) == {at_desk.id, at_level2.id}  # closed ones are not listed
    desk = preview[at_desk.id]
    assert (desk["version"], desk["can_move"], desk["reason"]) == (1, True, "")
    assert "initial_handling" in desk["position"]
    level2 = preview[at_level2.id]
    assert level2["can_move"] is False
    assert "level2_investigation" in level2["reason"]


def test_move_keeps_the_task_and_its_claim_and_uses_the_new_version(api, ctx, incidents):
    at_desk, at_level2, closed = incidents
    task_id = at_desk.task_id("initial_handling")
    api.ok(api.post("desk", f"/tasks/{task_id}/claim"))
    results = api.ok(
        api.post("manager", MIGRATE, {"incident_ids": [at_desk.id, at_level2.id, closed.id, 999]})
    )
    by_id = {r["incident_id"]: r for r in results}
    assert by_id[at_desk.id] == {"incident_id": at_desk.id, "ok": True, "reason": ""}
    assert (
        by_id[at_level2.id]["ok"] is False
        and "level2_investigation" in by_id[at_level2.id]["reason"]
    )
    assert by_id[closed.id]["ok"] is False and "closed" in by_id[closed.id]["reason"]
    assert by_id[999]["ok"] is False
    moved = at_desk.refresh()
    assert moved["process"]["version"] == 2
    [task] = [t for t in moved["tasks"] if t["name"] == "initial_handling"]
    assert (task["id"], task["claimed_by"], task["label"]) == (
        task_id,
        "desk",
        "First-line handling",
    )
    migrated = [e for e in moved["events"] if e["type"] == "migrated"]
    assert [(e["from_version"], e["to_version"], e["actor"]) for e in migrated] == [
        (1, 2, "manager")
    ]
    # The refused one is untouched: still version 1, no event.
    untouched = at_level2.refresh()
    assert untouched["process"]["version"] == 1
    assert "migrated" not in [e["type"] for e in untouched["events"]]
    # The moved incident goes on, on the new version: level 2 now sees the new field.
    at_desk.desk_passes_on()
    form = api.ok(api.get("l2", f"/tasks/{at_desk.task_id('level2_investigation')}"))["form"]
    assert "workaround" in [f["id"] for f in form["fields"]]


def test_a_moved_incident_still_reacts_to_sla_escalation(api, ctx, clock, incidents):
    at_desk, _at_level2, _closed = incidents
    api.ok(api.post("manager", MIGRATE, {"incident_ids": [at_desk.id]}))
    clock.advance(hours=200)  # P5 resolution (168 h) is breached
    fire_due(ctx)
    assert "sla_review" in at_desk.open_tasks()


def test_moving_to_an_older_version_or_twice_is_refused(api, incidents):
    at_desk, _at_level2, _closed = incidents
    api.ok(api.post("manager", MIGRATE, {"incident_ids": [at_desk.id]}))
    again = api.ok(api.post("manager", MIGRATE, {"incident_ids": [at_desk.id]}))
    assert again[0]["ok"] is False and "newer" in again[0]["reason"]
    older = api.ok(
        api.post(
            "manager",
            "/process-definitions/incident_management/1/migrate",
            {"incident_ids": [at_desk.id]},
        )
    )
    assert older[0]["ok"] is False
    assert at_desk.refresh()["process"]["version"] == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"incident_ids": []}, {"incident_ids": "1"}, {"incident_ids": [True]}, {"ids": [1]}, []],
)
def test_bad_bodies_are_422(api, incidents, body):
    assert api.post("manager", MIGRATE, body).status_code == 422


def test_roles_and_unknown_versions(api, incidents):
    assert api.get("desk", PREVIEW).status_code == 403
    assert api.post("l2", MIGRATE, {"incident_ids": [1]}).status_code == 403
    assert api.get("designer", PREVIEW).status_code == 200
    unknown = "/process-definitions/incident_management/9/migration-preview"
    assert api.get("manager", unknown).status_code == 404


def test_page_moves_the_chosen_incidents(api, ctx, browser, incidents):
    at_desk, at_level2, _closed = incidents
    browser.login("manager")
    page = browser.get("/process/versions/incident_management/2/migration")
    text = page.get_data(as_text=True)
    assert f'data-incident="{at_desk.id}" data-can-move="yes"' in text
    assert f'data-incident="{at_level2.id}" data-can-move="no"' in text
    response = browser.post(
        "/process/versions/incident_management/2/migration", {"incident_id": str(at_desk.id)}
    )
    assert response.status_code == 302
    with ctx.db.read() as session:
        incident = session.get(Incident, at_desk.id)
        assert incident is not None and incident.definition.version == 2
        kinds = session.scalars(select(Event.type).where(Event.incident_id == at_desk.id)).all()
        assert "migrated" in kinds
