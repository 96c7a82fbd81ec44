"""Correcting the record (PATCH title/description/contact) and the management review
a later change starts (contract Part 2, "People, callers and contact")."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.persistence.models import Incident
from engine.services.people import users
from engine.services.process import definitions
from tests.conftest import PASSWORD, Browser
from tests.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
# The bundled diagram before the management review moved into an event subprocess:
# manager_review sits in the main flow, nothing catches the signal.
WITHOUT_CATCHER = "c9906a3"


def changes(api: Any, incident_id: int) -> list[tuple[str, Any, Any, str]]:
    events = api.ok(api.get("manager", f"/incidents/{incident_id}"))["events"]
    return [
        (e["field"], e["old"], e["new"], e["actor"]) for e in events if e["type"] == "field_changed"
    ]


def count(api: Any, incident_id: int, kind: str) -> int:
    events = api.ok(api.get("manager", f"/incidents/{incident_id}"))["events"]
    return sum(1 for e in events if e["type"] == kind)


def ready(api: Any, incident_id: int) -> list[str]:
    incident = api.ok(api.get("manager", f"/incidents/{incident_id}"))
    return sorted(t["name"] for t in incident["tasks"])


def test_each_changed_field_writes_field_changed(api: Any) -> None:
    s = Scenario(api)
    patched = api.ok(
        api.patch(
            "desk",
            f"/incidents/{s.id}",
            {"title": "  Mail server down since 9:00 ", "contact": "ext. 1234", "description": ""},
        )
    )
    assert patched["title"] == "Mail server down since 9:00"
    assert patched["description"] == ""
    # contact was already "ext. 1234": no event for it.
    assert changes(api, s.id) == [
        ("title", "Mail server down", "Mail server down since 9:00", "desk"),
        ("description", "No mail since 9:00", "", "desk"),
    ]
    # The same values again: nothing changes, nothing is written.
    api.ok(api.patch("l2", f"/incidents/{s.id}", {"title": "Mail server down since 9:00"}))
    assert len(changes(api, s.id)) == 2
    assert count(api, s.id, "reclassified") == 0


def test_text_and_classification_in_one_patch(api: Any) -> None:
    s = Scenario(api)
    s.record()
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"contact": "ext. 99", "category": "hardware"}))
    assert changes(api, s.id) == [("contact", "ext. 1234", "ext. 99", "desk")]
    assert count(api, s.id, "reclassified") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"description": 5}, "description"),
        ({"contact": "x" * 301}, "contact"),
        ({"owner": "l2"}, "owner"),
    ],
)
def test_bad_text_is_422_naming_the_field(api: Any, body: dict[str, Any], field: str) -> None:
    s = Scenario(api)
    response = api.patch("desk", f"/incidents/{s.id}", body)
    assert response.status_code == 422
    assert field in response.get_json()["details"]
    assert changes(api, s.id) == []


@pytest.mark.parametrize("user", ["reporter", "director", "designer", "vendor"])
def test_only_handlers_edit_the_record(api: Any, user: str) -> None:
    s = Scenario(api)
    response = api.patch(user, f"/incidents/{s.id}", {"title": "mine now"})
    assert response.status_code in (403, 404)
    assert changes(api, s.id) == []


def test_closed_incident_is_not_edited(api: Any, ctx: Any) -> None:
    s = Scenario(api)
    with ctx.db.write() as session:
        session.get_one(Incident, s.id).status = "closed"
    assert api.patch("desk", f"/incidents/{s.id}", {"title": "late"}).status_code == 409


def test_raising_to_p2_starts_the_manager_review_once(api: Any) -> None:
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    assert s.refresh()["priority"] == 5
    assert "manager_review" not in ready(api, s.id)
    assert count(api, s.id, "management_escalation") == 0
    patched = api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "2"}))
    assert patched["priority"] == 2
    assert "manager_review" in [t["name"] for t in patched["tasks"]]
    assert count(api, s.id, "management_escalation") == 1
    # Higher still, while the review is open: no second review, no second event.
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"urgency": "1"}))
    assert count(api, s.id, "management_escalation") == 1
    assert ready(api, s.id).count("manager_review") == 1
    # A text change of an escalated incident escalates nothing.
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"title": "Mail down for everyone"}))
    assert count(api, s.id, "management_escalation") == 1


def test_changes_that_stay_below_p2_escalate_nothing(api: Any) -> None:
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "2", "urgency": "3"}))
    assert s.refresh()["priority"] > 2
    assert count(api, s.id, "management_escalation") == 0
    assert "manager_review" not in ready(api, s.id)


def test_incident_already_p1_at_classification_is_not_escalated_again(api: Any) -> None:
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    assert count(api, s.id, "management_escalation") == 1  # the diagram's own, at 1.3
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"urgency": "2"}))
    assert count(api, s.id, "management_escalation") == 1


def test_a_version_without_a_catcher_only_records_the_event(api: Any, ctx: Any) -> None:
    xml = subprocess.run(
        ["git", "show", f"{WITHOUT_CATCHER}:bpmn/incident_management.bpmn"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    designer = users.sign_in(ctx, "designer", PASSWORD)
    definitions.deploy(ctx, designer, xml, "without the escalation subprocess")
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    before = ready(api, s.id)
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "1"}))
    events = api.ok(api.get("manager", f"/incidents/{s.id}"))["events"]
    escalations = [e for e in events if e["type"] == "management_escalation"]
    assert [(e["actor"], e.get("signal")) for e in escalations] == [
        ("desk", "management_escalation")
    ]
    assert ready(api, s.id) == before


def test_history_shows_old_and_new_values(app: Any, api: Any) -> None:
    s = Scenario(api)
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"title": "Mail server on fire"}))
    browser = Browser(app)
    browser.login("manager")
    page = browser.get(f"/incidents/{s.id}").get_data(as_text=True)
    history = page[page.index('id="timeline-h"') :]
    assert "Mail server down" in history and "Mail server on fire" in history
    assert "→" in history


def test_handler_corrects_the_record_on_the_page(app: Any, api: Any) -> None:
    s = Scenario(api)
    browser = Browser(app)
    browser.login("desk")
    page = browser.get(f"/incidents/{s.id}").get_data(as_text=True)
    assert f'action="/incidents/{s.id}/record"' in page
    form = {"title": "Mail server down (all floors)", "description": "", "contact": "ext. 1234"}
    response = browser.post(f"/incidents/{s.id}/record", form, csrf_from=f"/incidents/{s.id}")
    assert response.status_code == 302 and response.location.endswith(f"/incidents/{s.id}")
    assert [c[0] for c in changes(api, s.id)] == ["title", "description"]
    # An empty title: the form again, marked, nothing written.
    response = browser.post(
        f"/incidents/{s.id}/record", {**form, "title": " "}, csrf_from=f"/incidents/{s.id}"
    )
    assert response.status_code == 422
    assert 'id="title-error"' in response.get_data(as_text=True)
    assert len(changes(api, s.id)) == 2
    # Without the CSRF token: refused.
    refused = browser.post(f"/incidents/{s.id}/record", form, with_csrf=False)
    assert refused.status_code == 400


@pytest.mark.parametrize("user", ["reporter", "director", "designer"])
def test_edit_form_is_for_handlers_only(app: Any, api: Any, user: str) -> None:
    s = Scenario(api)
    browser = Browser(app)
    browser.login(user)
    page = browser.get(f"/incidents/{s.id}")
    assert f'action="/incidents/{s.id}/record"' not in page.get_data(as_text=True)
    response = browser.post(
        f"/incidents/{s.id}/record", {"title": "x"}, csrf_from="/incidents"
    )
    assert response.status_code == 403
    assert changes(api, s.id) == []


def test_no_second_review_while_one_is_open(api: Any) -> None:
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    assert "manager_review" in ready(api, s.id)
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "3", "urgency": "3"}))
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "2"}))
    assert count(api, s.id, "management_escalation") == 1
    assert ready(api, s.id).count("manager_review") == 1


def test_review_done_then_raised_again_starts_another(api: Any) -> None:
    s = Scenario(api)
    s.record(impact="3", urgency="3")
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "2"}))
    s.complete("manager_review", {"manager_acknowledged": True})
    s.complete("director_review", {"director_acknowledged": True})
    assert "manager_review" not in ready(api, s.id)
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "3", "urgency": "3"}))
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"impact": "1", "urgency": "1"}))
    assert count(api, s.id, "management_escalation") == 2
    assert "manager_review" in ready(api, s.id)
