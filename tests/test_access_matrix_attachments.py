"""Every attachment route × every role, API and pages: allowed or refused, decided on
the server. The incident is reported by `reporter` and escalated to the vendors (one
organisation, so both test vendors work on it); it holds a public, an internal and a
vendor attachment. `reporter2` is a caller of nothing here; `bot` an integration user."""

from __future__ import annotations

import io
from typing import Any

import pytest

from engine.services.context import ServiceContext
from engine.services.people import users
from tests.conftest import PASSWORD, TEST_USERS, Api, Browser
from tests.scenario import Scenario

STAFF = {"desk", "desk2", "l2", "l2b", "l3", "manager", "director", "designer", "admin"}
VENDORS = {"vendor", "vendor2"}
CALLER = {"reporter"}
BOT = {"bot"}
EVERYONE = set(TEST_USERS) | BOT
# Who may see the incident at all (everyone else: 404, not even that it exists).
SEES_INCIDENT = STAFF | VENDORS | CALLER | BOT


def _multipart(name: str, data: bytes, **fields: str) -> dict[str, Any]:
    return {"file": (io.BytesIO(data), name), **fields}


@pytest.fixture
def world(api: Api, ctx: ServiceContext) -> dict[str, Any]:
    users.create_user(ctx, "bot", PASSWORD, ["integration"])
    with_bot = Api(api.client, {**api.tokens, "bot": users.issue_token(ctx, "bot", PASSWORD).token})
    s = Scenario(with_bot)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_vendor")

    def attach(user: str, **fields: str) -> int:
        response = with_bot.client.post(
            f"/api/v1/incidents/{s.id}/attachments",
            data=_multipart(f"{user}.txt", user.encode(), **fields),
            headers={"Authorization": f"Bearer {with_bot.tokens[user]}"},
        )
        return int(with_bot.ok(response, 201)["id"])

    return {
        "api": with_bot,
        "incident": s.id,
        "public": attach("reporter"),
        "internal": attach("desk", internal="true"),
        "vendor": attach("vendor"),
    }


Route = tuple[str, str, dict[str, str] | None, dict[int, set[str]]]


def api_routes(world: dict[str, Any]) -> list[Route]:
    """(method, path, upload fields or None, {status: users}); every user is in one set."""
    incident = world["incident"]
    upload = f"/incidents/{incident}/attachments"
    hidden = EVERYONE - SEES_INCIDENT
    return [
        ("POST", upload, {}, {201: SEES_INCIDENT, 404: hidden}),
        ("POST", upload, {"internal": "true"},
         {201: STAFF, 403: VENDORS | CALLER | BOT, 404: hidden}),
        ("POST", upload, {"vendor": "true"},
         {201: STAFF | VENDORS, 403: CALLER | BOT, 404: hidden}),
        ("GET", upload, None, {200: SEES_INCIDENT, 404: hidden}),
        ("GET", f"/attachments/{world['public']}", None, {200: SEES_INCIDENT, 404: hidden}),
        ("GET", f"/attachments/{world['internal']}", None, {200: STAFF, 404: EVERYONE - STAFF}),
        ("GET", f"/attachments/{world['vendor']}", None,
         {200: STAFF | VENDORS, 404: EVERYONE - STAFF - VENDORS}),
    ]  # fmt: skip


def test_every_api_route_for_every_role(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    for method, path, fields, expected in api_routes(world):
        assert set().union(*expected.values()) == EVERYONE, path
        for status, allowed in expected.items():
            for user in sorted(allowed):
                headers = {"Authorization": f"Bearer {api.tokens[user]}"}
                if method == "POST":
                    data = _multipart("m.txt", b"matrix", **(fields or {}))
                    response = api.client.post("/api/v1" + path, data=data, headers=headers)
                else:
                    response = api.client.get("/api/v1" + path, headers=headers)
                assert response.status_code == status, (method, path, fields, user)
        anonymous = (
            api.client.post("/api/v1" + path, data=_multipart("m.txt", b"x"))
            if method == "POST"
            else api.client.get("/api/v1" + path)
        )
        assert anonymous.status_code == 401, (method, path)


# -- pages ----------------------------------------------------------------------------------


PAGE_USERS = sorted(TEST_USERS)


def page_routes(world: dict[str, Any]) -> list[tuple[str, str, dict[str, str] | None, set[str]]]:
    """(method, path, upload fields, users allowed); everyone else is refused (403/404)."""
    incident = world["incident"]
    upload = f"/incidents/{incident}/attachments"
    people = STAFF | VENDORS | CALLER
    return [
        ("POST", upload, {}, people),
        ("GET", f"/attachments/{world['public']}", None, people),
        ("GET", f"/attachments/{world['internal']}", None, STAFF),
        ("GET", f"/attachments/{world['vendor']}", None, STAFF | VENDORS),
    ]


def test_every_page_route_for_every_role(app: Any, world: dict[str, Any]) -> None:
    incident_page = f"/incidents/{world['incident']}"
    for method, path, fields, allowed in page_routes(world):
        for user in PAGE_USERS:
            browser = Browser(app)
            browser.login(user)
            if method == "POST":
                response = browser.post(
                    path, _multipart("p.txt", b"page", **(fields or {})),
                    csrf_from="/incidents", content_type="multipart/form-data",
                )  # fmt: skip
                expected = {302} if user in allowed else {403, 404}
                if user in allowed:
                    assert response.headers["Location"].endswith(f"{incident_page}#attachments")
            else:
                response = browser.get(path)
                expected = {200} if user in allowed else {403, 404}
            assert response.status_code in expected, (method, path, user, response.status_code)


def test_signed_out_visitors_are_sent_to_sign_in(app: Any, world: dict[str, Any]) -> None:
    browser = Browser(app)
    for method, path, fields, _allowed in page_routes(world):
        if method == "POST":
            data = _multipart("p.txt", b"x", **(fields or {}))
            response = browser.post(path, data, content_type="multipart/form-data")
        else:
            response = browser.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]
