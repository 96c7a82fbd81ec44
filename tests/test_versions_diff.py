"""Comparing two deployed versions: the API, the page and the marked diagram."""

from __future__ import annotations

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.test_definitions_api_and_cli import deploy

BUNDLED = BUNDLED_PROCESS.read_bytes()
RENAMED = BUNDLED.replace(b'name="Record and classify incident"', b'name="Record it"')
NEW_CONDITION = BUNDLED.replace(
    b">management_escalation</bpmn:conditionExpression>",
    b">management_escalation and priority &lt; 3</bpmn:conditionExpression>",
)


def test_api_lists_what_changed_between_versions(api):
    assert deploy(api, "designer", RENAMED, "rename").status_code == 201
    assert deploy(api, "designer", NEW_CONDITION, "stricter").status_code == 201
    renamed = api.ok(api.get("desk", "/process-definitions/incident_management/diff?from=1&to=2"))
    assert (renamed["from"], renamed["to"], renamed["added"], renamed["removed"]) == (1, 2, [], [])
    [change] = renamed["changed"]
    assert (change["element_id"], change["aspects"], change["layout_only"]) == (
        "record_incident",
        ["name"],
        True,
    )
    # From 2 to 3: the rename is undone and a condition changes (not layout-only).
    later = api.ok(api.get("desk", "/process-definitions/incident_management/diff?from=2&to=3"))
    by_id = {c["element_id"]: c for c in later["changed"]}
    assert by_id["flow_escalation_yes"]["aspects"] == ["condition"]
    assert by_id["flow_escalation_yes"]["layout_only"] is False
    assert by_id["record_incident"]["aspects"] == ["name"]


def test_unknown_versions_and_roles(api):
    base = "/process-definitions/incident_management/diff"
    assert api.get("desk", f"{base}?from=1&to=9").status_code == 404
    assert api.get("desk", f"{base}?from=x&to=1").status_code == 404
    assert api.get("desk", "/process-definitions/nope/diff?from=1&to=1").status_code == 404
    assert api.get("reporter", f"{base}?from=1&to=1").status_code == 403


def test_page_lists_changes_and_marks_the_diagram(api, browser):
    assert deploy(api, "designer", NEW_CONDITION, "stricter").status_code == 201
    browser.login("manager")
    page = browser.get("/process/versions/incident_management/diff?from=1&to=2")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-element="flow_escalation_yes"' in text
    assert "management_escalation and priority &lt; 3" in text  # in the details, escaped
    diagram = browser.get(
        "/process/versions/incident_management/diff/diagram.json?from=1&to=2"
    ).get_json()
    assert diagram["markers"] == {"diff-added": [], "diff-changed": ["flow_escalation_yes"]}
    listing = browser.get("/process/").get_data(as_text=True)
    assert "/process/versions/incident_management/diff?from=1&amp;to=2" in listing
    browser.login("desk")
    assert browser.get("/process/versions/incident_management/diff").status_code == 403
