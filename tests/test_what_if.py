"""What-if: closed incidents' recorded decisions replayed on a draft."""

from __future__ import annotations

import pytest

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.test_drafts import call, new_draft

BUNDLED = BUNDLED_PROCESS.read_bytes()
# The desk can no longer resolve: every incident goes to level 2.
NO_DESK_RESOLUTION = BUNDLED.replace(
    b">resolved_at_desk</bpmn:conditionExpression>",
    b">resolved_at_desk and False</bpmn:conditionExpression>",
)
EVERYTHING_P1 = BUNDLED.replace(b"itsm_priority(impact, urgency)", b"itsm_priority(1, 1)")


@pytest.fixture
def closed(api, clock):
    """A P5 resolved at the desk after 5 hours, and one resolved by level 2."""
    at_desk = Scenario(api)
    at_desk.record()
    clock.advance(hours=5)
    at_desk.desk_resolves()
    at_desk.confirm(True)
    at_desk.feedback()
    by_level2 = Scenario(api)
    by_level2.record(impact="2", urgency="2")
    by_level2.desk_passes_on()
    by_level2.level2("solved")
    by_level2.resolve("level2")
    by_level2.confirm(True)
    by_level2.feedback()
    return at_desk, by_level2


def what_if(api, draft_id, user="designer", **params):
    return call(api, user, "GET", f"/process-drafts/{draft_id}/what-if", **params)


def test_an_unchanged_draft_takes_every_recorded_route(api, closed):
    report = api.ok(what_if(api, new_draft(api)["id"]))
    assert (report["replayed"], report["same_route"]) == (2, 2)
    for item in report["incidents"]:
        assert item["diverged"] is None and item["steps_replayed"] >= 4
        assert item["priority"]["recorded"] == item["priority"]["draft"]


def test_the_first_different_step_is_named(api, closed):
    at_desk, by_level2 = closed
    report = api.ok(what_if(api, new_draft(api, NO_DESK_RESOLUTION)["id"]))
    by_id = {i["incident_id"]: i for i in report["incidents"]}
    diverged = by_id[at_desk.id]["diverged"]
    assert diverged["recorded"] == "confirm_recovery"
    assert diverged["draft_offers"] == ["level2_investigation"]
    assert diverged["step"] == 3  # record, initial handling, then the difference
    assert by_id[by_level2.id]["same_route"] is True


def test_a_different_priority_changes_the_sla_outcome(api, closed):
    at_desk, _ = closed
    report = api.ok(what_if(api, new_draft(api, EVERYTHING_P1)["id"]))
    item = {i["incident_id"]: i for i in report["incidents"]}[at_desk.id]
    assert item["priority"] == {"recorded": 5, "draft": 1}
    assert item["sla"]["recorded"]["resolution_breached"] is False  # 5 h of 168 h
    assert item["sla"]["draft"]["resolution_breached"] is True  # 5 h of 4 h
    assert item["same_route"] is True


def test_a_newly_required_field_is_a_difference(api, closed):
    required = BUNDLED.replace(
        b'<camunda:formField id="satisfaction"',
        b'<camunda:formField id="root_cause" label="Root cause" type="string">\n'
        b"            <camunda:validation>"
        b'<camunda:constraint name="required" /></camunda:validation>\n'
        b"          </camunda:formField>\n"
        b'          <camunda:formField id="satisfaction"',
    )
    report = api.ok(what_if(api, new_draft(api, required)["id"]))
    reasons = [i["diverged"]["reason"] for i in report["incidents"] if i["diverged"]]
    assert len(reasons) == 2 and all("root_cause" in r for r in reasons)


def test_bad_requests(api, closed):
    broken = BUNDLED.replace(
        b">resolved_at_desk</bpmn:conditionExpression>",
        b">resolved_at_desk ==</bpmn:conditionExpression>",
    )
    assert what_if(api, new_draft(api, broken)["id"]).status_code == 422
    draft = new_draft(api)["id"]
    assert what_if(api, draft, limit="0").status_code == 422
    assert what_if(api, draft, limit="abc").status_code == 422
    assert what_if(api, draft, user="desk").status_code == 403
    assert what_if(api, 999).status_code == 404


def test_page_shows_the_replay(api, browser, closed):
    draft = new_draft(api, NO_DESK_RESOLUTION)["id"]
    browser.login("designer")
    text = browser.get(f"/process/drafts/{draft}/what-if?limit=5").get_data(as_text=True)
    at_desk, by_level2 = closed
    assert f'data-incident="{at_desk.id}" data-same="no"' in text
    assert f'data-incident="{by_level2.id}" data-same="yes"' in text


def test_a_review_started_by_a_later_change_is_replayed(api):
    """PATCH made the incident P2: the app sent management_escalation. The replay
    sends it at the same point, so the recorded reviews are offered again; the
    diagram's own throw at classification is not sent twice."""
    s = Scenario(api)
    s.record()
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "2"}))
    sent = [e for e in s.refresh()["events"] if e["type"] == "management_escalation"]
    assert [e.get("signal") for e in sent] == ["management_escalation"]
    s.complete("manager_review", {"manager_acknowledged": True})
    s.complete("director_review", {"director_acknowledged": True})
    s.desk_resolves()
    s.confirm(True)
    s.feedback()
    report = api.ok(what_if(api, new_draft(api)["id"]))
    (item,) = [i for i in report["incidents"] if i["incident_id"] == s.id]
    assert item["diverged"] is None, item
    assert item["steps_replayed"] >= 6
