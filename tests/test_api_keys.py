"""Named, revocable API keys for integration users (contract Part 2, "People")."""

from __future__ import annotations

import re

import pytest

from engine.services.people import users
from engine.services.people.users import set_active
from tests.conftest import PASSWORD
from tests.scenario import Scenario


@pytest.fixture
def gateway(ctx):
    users.create_user(ctx, "mailgw", PASSWORD, ["integration"])
    return "mailgw"


def issue(api, body, user="admin"):
    return api.post(user, "/api-keys", body)


def as_key(api, key, method, path, json=None):
    return api.client.open(
        "/api/v1" + path, method=method, json=json, headers={"Authorization": f"Bearer {key}"}
    )


def test_an_admin_issues_a_key_that_signs_a_program_in(api, gateway, clock):
    s = Scenario(api)
    s.record()
    issued = api.ok(issue(api, {"username": gateway, "name": "mail gateway"}), 201)
    key = issued["key"]
    assert key.startswith("itsm_key_") and issued["prefix"] == key[:15]
    assert issued["expires_at"] is None and issued["last_used_at"] is None

    listed = api.ok(as_key(api, key, "GET", "/incidents"))
    assert listed["total"] == 1
    # An integration user reads any incident as its caller sees it: no staff names.
    detail = api.ok(as_key(api, key, "GET", f"/incidents/{s.id}"))
    assert "desk" not in {e["actor"] for e in detail["events"]}
    assert not any(e["type"] == "stage_entered" for e in detail["events"])
    # Not staff: staff-only reads stay closed.
    assert as_key(api, key, "GET", "/process-definitions").status_code == 403

    keys = api.ok(api.get("admin", "/api-keys"))
    assert keys["total"] == 1
    (row,) = keys["items"]
    assert "key" not in row and row["last_used_at"] is not None
    assert row["username"] == gateway and row["created_by"] == "admin"


def test_revoked_expired_and_orphaned_keys_stop_working(api, ctx, gateway, clock):
    revoked = api.ok(issue(api, {"username": gateway, "name": "a"}), 201)
    api.ok(api.call("admin", "DELETE", f"/api-keys/{revoked['id']}"))
    assert as_key(api, revoked["key"], "GET", "/incidents").status_code == 401

    soon = clock.now.replace(microsecond=0).isoformat()
    clock.advance(seconds=-60)
    expiring = api.ok(issue(api, {"username": gateway, "name": "b", "expires_at": soon}), 201)
    assert as_key(api, expiring["key"], "GET", "/incidents").status_code == 200
    clock.advance(minutes=2)
    assert as_key(api, expiring["key"], "GET", "/incidents").status_code == 401

    lasting = api.ok(issue(api, {"username": gateway, "name": "c"}), 201)
    set_active(ctx, gateway, False)
    assert as_key(api, lasting["key"], "GET", "/incidents").status_code == 401
    assert as_key(api, "itsm_key_made-up", "GET", "/incidents").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "desk", "name": "x"}, "username"),
        ({"username": "nobody", "name": "x"}, "username"),
        ({"username": "mailgw", "name": ""}, "name"),
        ({"username": "mailgw", "name": "x" * 101}, "name"),
        ({"username": "mailgw", "name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"username": "mailgw", "name": "x", "expires_at": "2020-01-01T00:00+00:00"}, "expires_at"),
        ({"username": "mailgw", "name": "x", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"username": "mailgw", "name": "x", "scope": "all"}, "scope"),
    ],
)
def test_bad_keys_are_refused_naming_the_field(api, gateway, body, field):
    response = issue(api, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]


def test_names_are_unique_per_user_and_only_admins_manage_keys(api, gateway):
    api.ok(issue(api, {"username": gateway, "name": "monitoring"}), 201)
    assert issue(api, {"username": gateway, "name": "monitoring"}).status_code == 422
    assert issue(api, {"username": gateway, "name": "x"}, user="manager").status_code == 403
    assert api.get("desk", "/api-keys").status_code == 403
    assert api.call("desk", "DELETE", "/api-keys/1").status_code == 403
    assert api.call("admin", "DELETE", "/api-keys/999").status_code == 404
    assert api.get("admin", "/api-keys?limit=0").status_code == 422


def test_the_admin_page_shows_a_new_key_once_and_revokes_it(api, browser, gateway):
    browser.login("admin")
    page = browser.get("/admin/api-keys")
    assert page.status_code == 200 and b"mailgw" in page.data
    issued = browser.post(
        "/admin/api-keys",
        {"username": gateway, "name": "WeChat bridge"},
        csrf_from="/admin/api-keys",
    )
    assert issued.status_code == 201
    key = re.search(rb'<code class="api-key">(itsm_key_[^<]+)</code>', issued.data).group(1)
    assert as_key(api, key.decode(), "GET", "/incidents").status_code == 200
    again = browser.get("/admin/api-keys")
    assert key not in again.data and b"WeChat bridge" in again.data
    key_id = api.ok(api.get("admin", "/api-keys"))["items"][0]["id"]
    done = browser.post(f"/admin/api-keys/{key_id}/revoke", {}, csrf_from="/admin/api-keys")
    assert done.status_code == 302
    assert as_key(api, key.decode(), "GET", "/incidents").status_code == 401
    bad = browser.post(
        "/admin/api-keys", {"username": gateway, "name": ""}, csrf_from="/admin/api-keys"
    )
    assert bad.status_code == 422
    browser.login("desk")
    assert browser.get("/admin/api-keys").status_code == 403


def test_issuing_and_revoking_keys_are_administration_events(api, gateway):
    issued = api.ok(issue(api, {"username": gateway, "name": "monitoring"}), 201)
    api.ok(api.call("admin", "DELETE", f"/api-keys/{issued['id']}"))
    events = api.ok(api.get("admin", "/audit/admin-events"))["items"]
    kinds = [(e["type"], e["actor"], e["data"].get("name")) for e in events[:2]]
    assert kinds == [
        ("api_key_revoked", "admin", "monitoring"),
        ("api_key_issued", "admin", "monitoring"),
    ]
    assert issued["key"] not in str(events)  # never the secret


def test_an_api_key_has_no_password_to_change(api, gateway):
    key = api.ok(issue(api, {"username": gateway, "name": "bridge"}), 201)["key"]
    body = {"current_password": PASSWORD, "new_password": "another long passphrase 7"}
    response = as_key(api, key, "POST", "/auth/password", body)
    assert response.status_code == 403
    assert "API key" in response.get_json()["error"]
