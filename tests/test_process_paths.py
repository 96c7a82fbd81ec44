"""Every routing path of the contract, from report to closure, over the JSON API."""

from __future__ import annotations

from tests.scenario import Scenario


def test_desk_resolved_path(api):
    s = Scenario(api)
    assert s.incident["status"] == "new"
    assert s.incident["phase"] == "identify"
    assert s.incident["number"] == f"INC-{s.id:06d}"
    assert s.open_tasks() == ["record_incident"]

    s.record(impact="3", urgency="2", category="network")
    assert s.incident["status"] == "in_progress"
    assert s.incident["priority"] == 4
    assert s.incident["major"] is False
    assert s.incident["category"] == "network"
    assert s.open_tasks() == ["initial_handling"]
    assert s.incident["phase"] == "investigate"

    s.desk_resolves()
    assert s.incident["status"] == "resolved"
    assert s.incident["phase"] == "resolve"
    assert s.open_tasks() == ["confirm_recovery"]

    s.confirm(True)
    assert s.open_tasks() == ["record_feedback"]
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.incident["phase"] == "closed"
    assert s.open_tasks() == []
    types = s.event_types()
    assert types[0] == "created"
    assert types.count("task_completed") == 4
    assert "resolved" in types and types[-1] == "closed"
    assert "technical_escalation" not in types
    assert "management_escalation" not in types


def test_p1_starts_manager_then_director_review_beside_handling(api):
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    assert s.incident["priority"] == 1
    assert s.incident["major"] is True
    assert s.open_tasks() == ["initial_handling", "manager_review"]
    assert "management_escalation" in s.event_types()

    # The handling never waits for the reviews.
    s.desk_passes_on()
    assert s.open_tasks() == ["level2_investigation", "manager_review"]
    s.complete("manager_review", {"manager_acknowledged": True})
    assert s.open_tasks() == ["director_review", "level2_investigation"]
    s.complete("director_review", {"director_acknowledged": True})
    assert s.open_tasks() == ["level2_investigation"]

    s.level2("solved")
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert "cancelled" not in s.event_types()


def test_closure_cancels_open_reviews(api):
    s = Scenario(api)
    s.record(impact="2", urgency="1")  # P2, not major: still a management escalation
    assert s.incident["priority"] == 2
    assert s.incident["major"] is False
    s.desk_resolves()
    s.confirm(True)
    assert s.open_tasks() == ["manager_review", "record_feedback"]
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.open_tasks() == []
    events = s.refresh()["events"]
    cancelled = [e for e in events if e["type"] == "cancelled"]
    assert [e["task"] for e in cancelled] == ["manager_review"]
    assert events[-1]["type"] == "closed"


def test_major_by_impact_alone(api):
    s = Scenario(api)
    s.record(impact="1", urgency="3")
    assert s.incident["priority"] == 3
    assert s.incident["major"] is True
    assert "manager_review" in s.open_tasks()


def test_level2_solved_without_and_with_service_request(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    assert s.open_tasks() == ["level2_investigation"]
    types = s.event_types()
    assert types.count("technical_escalation") == 1
    s.level2("solved", service_request_required=True, change_required=True)
    assert s.open_tasks() == ["level2_resolve"]
    kinds = sorted(link["kind"] for link in s.incident["links"])
    assert kinds == ["change", "service_request"]
    for link in s.incident["links"]:
        assert link["status"] == "open" and link["creator"] == "l2"
        assert link["number"].split("-")[0] in ("CHG", "SR")
    s.complete(
        "level2_resolve",
        {"resolution": "Replaced NIC", "create_problem": True, "create_knowledge_article": True},
    )
    assert s.incident["status"] == "resolved"
    kinds = sorted(link["kind"] for link in s.incident["links"])
    assert kinds == ["change", "knowledge_article", "problem", "service_request"]
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"


def test_reassign_loop_assigns_to_named_engineer(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    for _ in range(3):
        s.level2("reassign", reassign_reason="needs the network team")
        assert s.open_tasks() == ["level2_investigation"]
    s.level2("reassign", reassign_reason="l2b knows this system", reassign_to="l2b")
    task = s.refresh()["tasks"][0]
    assert task["claimed_by"] == "l2b"
    # Claimed: only the assignee may complete it.
    response = api.post("l2", f"/tasks/{task['id']}/complete", {"level2_outcome": "solved"})
    assert response.status_code == 409
    s.complete("level2_investigation", {"level2_outcome": "solved"}, user="l2b")
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    types = s.event_types()
    assert types.count("assigned") == 1
    assert types.count("technical_escalation") == 1  # reassigning within level 2 is no escalation
    assert s.incident["status"] == "closed"


def test_level2_to_level3_solved(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_level3")
    assert s.open_tasks() == ["level3_investigation"]
    s.complete("level3_investigation", {"level3_outcome": "solved", "change_required": True})
    assert s.open_tasks() == ["level3_resolve"]
    assert [link["kind"] for link in s.incident["links"]] == ["change"]
    s.resolve("level3")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.event_types().count("technical_escalation") == 2


def test_vendor_returns_to_level2_when_level2_escalated(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_vendor")
    assert s.open_tasks() == ["vendor_investigation"]
    s.complete("vendor_investigation", {"solution": "Apply firmware 2.1"})
    assert s.open_tasks() == ["level2_resolve"]
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"


def test_vendor_returns_to_level3_when_level3_escalated(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_level3")
    s.complete("level3_investigation", {"level3_outcome": "escalate_vendor"})
    assert s.open_tasks() == ["vendor_investigation"]
    s.complete("vendor_investigation", {"solution": "Patch from vendor"})
    assert s.open_tasks() == ["level3_resolve"]
    s.resolve("level3")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.event_types().count("technical_escalation") == 3


def test_vendor_route_is_remembered_per_escalation_after_reopen(api):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_level3")
    s.complete("level3_investigation", {"level3_outcome": "escalate_vendor"})
    s.complete("vendor_investigation", {"solution": "first try"})
    s.resolve("level3")
    s.confirm(False)  # reopened: back to level 2
    s.level2("escalate_vendor")
    s.complete("vendor_investigation", {"solution": "second try"})
    # This time level 2 escalated, so level 2 resolves.
    assert s.open_tasks() == ["level2_resolve"]


def test_not_recovered_reopens_to_level2(api):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    assert s.incident["status"] == "resolved"
    s.confirm(False)
    assert s.incident["status"] == "in_progress"
    assert s.open_tasks() == ["level2_investigation"]
    types = s.event_types()
    assert "reopened" in types
    s.level2("solved")
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.event_types().count("resolved") == 2


def test_vendor_sees_only_incidents_it_worked_on(api):
    a = Scenario(api)
    b = Scenario(api)
    for s in (a, b):
        s.record()
        s.desk_passes_on()
    a.level2("escalate_vendor")
    listing = api.ok(api.get("vendor", "/incidents"))
    assert [i["id"] for i in listing["items"]] == [a.id]
    assert api.get("vendor", f"/incidents/{b.id}").status_code == 404
    assert api.get("vendor", f"/incidents/{a.id}").status_code == 200
