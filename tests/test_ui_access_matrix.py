"""Every browser route × every role: allowed or forbidden, decided on the server."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_USERS, Browser
from tests.scenario import Scenario

ROLES_BY_USER = {user: roles[0] for user, roles in TEST_USERS.items() if not user.endswith("2")}
STAFF = {"desk", "l2", "l2b", "l3", "manager", "director", "designer", "admin"}
HANDLERS = {"desk", "l2", "l2b", "l3", "manager"}
LANE_WORKERS = {"desk", "l2", "l2b", "l3", "vendor", "manager", "director"}


def _status(browser: Browser, method: str, path: str, data: dict[str, str] | None) -> int:
    if method == "GET":
        return int(browser.get(path).status_code)
    return int(browser.post(path, data or {}).status_code)


@pytest.fixture
def world(api):
    """One incident reported by `reporter`, classified, waiting for the desk."""
    s = Scenario(api)
    s.record()
    return {"incident": s.id, "task": s.task_id("initial_handling")}


def routes(world: dict[str, object]) -> list[tuple[str, str, dict[str, str] | None, set[str]]]:
    """(method, path, form, users allowed); everyone else must be refused."""
    incident, task = world["incident"], world["task"]
    everyone = set(ROLES_BY_USER)
    return [
        ("GET", "/tasks", None, LANE_WORKERS),
        ("GET", f"/tasks/{task}", None, {"desk"}),
        ("POST", f"/tasks/{task}/claim", None, {"desk"}),
        ("GET", "/incidents", None, everyone),
        ("GET", "/incidents/new", None, everyone),
        ("GET", f"/incidents/{incident}", None, STAFF | {"reporter"}),
        ("GET", f"/incidents/{incident}/diagram.json", None, STAFF | {"reporter"}),
        ("POST", f"/incidents/{incident}/suspend", {"reason": "waiting"}, HANDLERS),
        ("GET", "/admin/users", None, {"admin"}),
    ]


def test_every_route_for_every_role(app, world):
    refused_codes = {403, 404}
    for method, path, data, allowed in routes(world):
        for user in ROLES_BY_USER:
            browser = Browser(app)
            browser.login(user)
            code = _status(browser, method, path, data)
            if user in allowed:
                assert code in (200, 302), (method, path, user, code)
            else:
                assert code in refused_codes, (method, path, user, code)
            if method == "POST" and path.endswith("/suspend") and code == 302:
                # Undo, so the next user finds the incident as it was.
                assert browser.post(f"/incidents/{world['incident']}/resume").status_code == 302


def test_signed_out_visitors_are_sent_to_sign_in(app, world):
    browser = Browser(app)
    for method, path, _data, _allowed in routes(world):
        if method != "GET" or path.endswith(".json"):
            continue
        response = browser.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]


def test_post_without_csrf_changes_nothing(app, api, world):
    browser = Browser(app)
    browser.login("desk")
    for path, data in (
        (f"/tasks/{world['task']}", {"resolved_at_desk": "on", "resolution": "x"}),
        (f"/tasks/{world['task']}/claim", {}),
        (f"/incidents/{world['incident']}/notes", {"text": "x", "internal": "1"}),
        (f"/incidents/{world['incident']}/suspend", {"reason": "x"}),
        ("/logout", {}),
    ):
        assert browser.post(path, data, with_csrf=False).status_code == 400, path
    detail = api.ok(api.get("manager", f"/incidents/{world['incident']}"))
    assert detail["status"] == "in_progress"
    assert [t["name"] for t in detail["tasks"]] == ["initial_handling"]
    assert detail["tasks"][0]["claimed_by"] is None
    assert browser.get("/tasks").status_code == 200  # still signed in


def test_nav_counts_ready_tasks_per_lane(app, api, ctx):
    from engine.services.people import users

    users.create_user(ctx, "both", "a long password", ["level2", "level3"])
    for _ in range(2):
        s = Scenario(api)
        s.record()
        s.desk_passes_on()
    browser = Browser(app)
    browser.login("both", "a long password")
    page = browser.get("/incidents").get_data(as_text=True)
    assert page.count('class="lane-count"') == 2
    assert '<span class="count">2</span>' in page
