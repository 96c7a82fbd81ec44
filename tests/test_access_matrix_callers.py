"""The routes of callers, record edits and people's contact × every role: allowed or
refused, decided on the server (pages and API alike)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.services.people import users
from tests.conftest import PASSWORD, TEST_USERS, Browser
from tests.scenario import Scenario

ROLES_BY_USER = {user: roles[0] for user, roles in TEST_USERS.items() if not user.endswith("2")}
STAFF = {"desk", "l2", "l2b", "l3", "manager", "director", "designer", "admin"}
HANDLERS = {"desk", "l2", "l2b", "l3", "manager"}
EVERYONE = set(ROLES_BY_USER)
PROGRAM = "gateway"  # an integration user: API only


@pytest.fixture
def world(api: Any, ctx: Any) -> dict[str, Any]:
    users.create_user(ctx, PROGRAM, PASSWORD, ["integration"])
    api.tokens[PROGRAM] = users.issue_token(ctx, PROGRAM, PASSWORD).token
    s = Scenario(api)
    return {"incident": s.id}


def page_routes(world: dict[str, Any]) -> list[tuple[str, str, dict[str, str] | None, set[str]]]:
    incident = world["incident"]
    return [
        ("GET", "/incidents/callers?q=rep", None, STAFF),
        ("GET", "/incidents/new?caller=reporter", None, EVERYONE),
        ("POST", f"/incidents/{incident}/record", {"title": "Mail server down"}, HANDLERS),
        ("GET", "/preferences", None, EVERYONE),
        ("POST", "/preferences", {"language": "zh_Hant_TW", "notify_task_ready": "1"}, EVERYONE),
        ("POST", "/admin/users/l3/profile", {"email": "", "language": "zh_Hant_TW"}, {"admin"}),
    ]


def test_every_page_for_every_role(app: Any, world: dict[str, Any]) -> None:
    for method, path, data, allowed in page_routes(world):
        for user in ROLES_BY_USER:
            browser = Browser(app)
            browser.login(user)
            if method == "GET":
                code = browser.get(path).status_code
            else:
                code = browser.post(path, data or {}, csrf_from="/incidents").status_code
            if user in allowed:
                assert code in (200, 302), (method, path, user, code)
            else:
                assert code in (403, 404), (method, path, user, code)


def test_signed_out_visitors_are_sent_to_sign_in(app: Any, world: dict[str, Any]) -> None:
    browser = Browser(app)
    for method, path, _data, _allowed in page_routes(world):
        if method != "GET":
            continue
        response = browser.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_posts_without_csrf_change_nothing(app: Any, api: Any, world: dict[str, Any]) -> None:
    for user, path, data in (
        ("desk", f"/incidents/{world['incident']}/record", {"title": "forged"}),
        ("desk", "/preferences", {"language": "en"}),
        ("admin", "/admin/users/desk/profile", {"email": "forged@example.com"}),
    ):
        browser = Browser(app)
        browser.login(user)
        assert browser.post(path, data, with_csrf=False).status_code == 400, path
    incident = api.ok(api.get("desk", f"/incidents/{world['incident']}"))
    assert incident["title"] == "Mail server down"
    me = api.ok(api.get("desk", "/me"))
    assert (me["language"], me["email"]) == ("zh_Hant_TW", None)


def api_routes(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, set[str]]]:
    incident = world["incident"]
    report = {"title": "Down", "channel": "phone"}
    return [
        ("POST", "/incidents", {**report, "caller": "reporter"}, STAFF | {PROGRAM}),
        ("POST", "/incidents", {**report, "caller_email": "x@example.com"}, STAFF | {PROGRAM}),
        ("POST", "/incidents", {**report, "dedup_key": "k"}, {PROGRAM}),
        (
            "POST",
            f"/incidents/{incident}/notes",
            {"text": "hi", "on_behalf_of": "reporter"},
            {PROGRAM},
        ),
        ("PATCH", f"/incidents/{incident}", {"contact": "ext. 1234"}, HANDLERS),
        ("GET", "/me", None, EVERYONE | {PROGRAM}),
    ]


def test_every_api_route_for_every_role(api: Any, world: dict[str, Any]) -> None:
    for method, path, body, allowed in api_routes(world):
        for user in [*ROLES_BY_USER, PROGRAM]:
            response = api.call(user, method, path, body)
            if user in allowed:
                assert response.status_code in (200, 201), (method, path, user, response.json)
            else:
                assert response.status_code in (403, 404), (method, path, user, response.json)
        assert api.call(None, method, path, body).status_code == 401
