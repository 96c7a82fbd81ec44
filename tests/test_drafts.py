"""Process drafts over the API: create, save with revisions, check, deploy."""

from __future__ import annotations

import pytest

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.test_definitions_api_and_cli import BILLION_LAUGHS, XXE

BUNDLED = BUNDLED_PROCESS.read_bytes()
GOOD_CONDITION = b">management_escalation</bpmn:conditionExpression>"
BROKEN_CONDITION = b">management_escalation ==</bpmn:conditionExpression>"


def call(api, user, method, path, body=None, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.client.open(
        f"/api/v1{path}" + (f"?{query}" if query else ""),
        method=method,
        data=body,
        headers={"Authorization": f"Bearer {api.tokens[user]}", "Content-Type": "application/xml"},
    )


def new_draft(api, body=None, **params):
    response = call(api, "designer", "POST", "/process-drafts", body, **params)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_new_draft_copies_the_latest_version(api):
    draft = new_draft(api)
    assert (draft["based_on_version"], draft["created_by"], draft["revision"]) == (
        1,
        "designer",
        1,
    )
    full = api.ok(call(api, "designer", "GET", f"/process-drafts/{draft['id']}"))
    assert full["xml"] == BUNDLED.decode()
    listed = api.ok(call(api, "manager", "GET", "/process-drafts"))  # the manager reads
    assert [d["id"] for d in listed] == [draft["id"]]


def test_save_needs_the_current_revision(api):
    draft = new_draft(api, name="faster P2")
    edited = BUNDLED.replace(b'name="Record and classify incident"', b'name="Record it"')
    saved = api.ok(
        call(api, "designer", "PUT", f"/process-drafts/{draft['id']}", edited, revision=1)
    )
    assert saved["revision"] == 2
    stale = call(api, "designer", "PUT", f"/process-drafts/{draft['id']}", BUNDLED, revision=1)
    assert stale.status_code == 409
    full = api.ok(call(api, "designer", "GET", f"/process-drafts/{draft['id']}"))
    assert "Record it" in full["xml"]  # the stale save changed nothing


def test_problems_name_their_element_and_block_deploying(api):
    draft = new_draft(api, BUNDLED.replace(GOOD_CONDITION, BROKEN_CONDITION), name="broken")
    report = api.ok(call(api, "designer", "GET", f"/process-drafts/{draft['id']}/problems"))
    assert report["deployable"] is False
    assert "flow_escalation_yes" in [p["element"] for p in report["problems"]]
    refused = call(api, "designer", "POST", f"/process-drafts/{draft['id']}/deploy", note="x")
    assert refused.status_code == 422
    versions = api.ok(api.get("designer", "/process-definitions"))
    assert [v["version"] for v in versions] == [1]


def test_deploying_a_clean_draft_makes_the_next_version_for_new_incidents(api):
    renamed = BUNDLED.replace(b'name="Record and classify incident"', b'name="Record it"')
    draft = new_draft(api, renamed)
    assert api.ok(call(api, "designer", "GET", f"/process-drafts/{draft['id']}/problems")) == {
        "problems": [],
        "deployable": True,
    }
    response = call(api, "designer", "POST", f"/process-drafts/{draft['id']}/deploy", note="rename")
    assert response.status_code == 201
    assert response.get_json() == {"key": "incident_management", "version": 2}
    versions = api.ok(api.get("designer", "/process-definitions"))
    assert (versions[-1]["version"], versions[-1]["note"], versions[-1]["deployed_by"]) == (
        2,
        "rename",
        "designer",
    )
    listed = api.ok(call(api, "designer", "GET", "/process-drafts"))
    assert listed[0]["deployed_version"] == 2
    s = Scenario(api)
    assert s.incident["process"] == {"key": "incident_management", "version": 2}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<definitions", "XML"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'/>", "root element"),
        (BILLION_LAUGHS, "DOCTYPE"),
        (XXE, "DOCTYPE"),
        (b"<?xml version='1.0'?>" + b" " * (50 * 1024 * 1024), "larger than"),
    ],
)
def test_bad_uploads_are_422_and_save_nothing(api, body, fragment):
    response = call(api, "designer", "POST", "/process-drafts", body)
    assert response.status_code == 422
    assert fragment.lower() in str(response.get_json()).lower()
    assert api.ok(call(api, "designer", "GET", "/process-drafts")) == []


@pytest.mark.parametrize(
    ("user", "method", "path"),
    [
        ("manager", "POST", "/process-drafts"),
        ("desk", "GET", "/process-drafts"),
        ("manager", "PUT", "/process-drafts/{id}"),
        ("manager", "POST", "/process-drafts/{id}/deploy"),
        ("l2", "GET", "/process-drafts/{id}/problems"),
        ("manager", "DELETE", "/process-drafts/{id}"),
    ],
)
def test_roles(api, user, method, path):
    draft = new_draft(api)
    response = call(api, user, method, path.format(id=draft["id"]), BUNDLED, revision=1)
    assert response.status_code == 403


def test_unknown_drafts_are_404_and_delete_removes(api):
    assert call(api, "designer", "GET", "/process-drafts/999").status_code == 404
    assert call(api, "designer", "GET", "/process-drafts/abc").status_code == 404
    draft = new_draft(api)
    assert call(api, "designer", "DELETE", f"/process-drafts/{draft['id']}").status_code == 204
    assert call(api, "designer", "GET", f"/process-drafts/{draft['id']}").status_code == 404
