"""Administration events: each change to users, roles, tokens, SLA policies,
calendars and process definitions writes one, with its actor and what changed
and never a secret; the API lists them paged and the admin page shows them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.models import AdminEvent
from engine.services.audit import admin_events as types
from engine.services.audit.verify import verify_all
from engine.services.context import Actor, ServiceContext
from engine.services.people import users
from engine.services.process import definitions, drafts
from engine.services.sla import calendars, policies
from tests.conftest import PASSWORD, Browser
from tests.test_audit_trail import template_audit_key  # noqa: F401  (autouse fixture)
from web.ui.audit import EVENT_LABELS

NEW_PASSWORD = "another long secret"
MANAGER = Actor(id=0, username="manager", roles=frozenset({"incident_manager"}))
DESIGNER = Actor(id=0, username="designer", roles=frozenset({"designer"}))
PAGE = "/admin/audit"


def _newest(ctx: ServiceContext) -> int:
    with ctx.db.read() as session:
        return session.scalar(select(AdminEvent.id).order_by(AdminEvent.id.desc()).limit(1)) or 0


def _since(ctx: ServiceContext, after: int) -> list[tuple[str, str, dict[str, Any]]]:
    with ctx.db.read() as session:
        rows = session.scalars(
            select(AdminEvent).where(AdminEvent.id > after).order_by(AdminEvent.id)
        )
        return [(row.actor, row.type, row.data) for row in rows]


def test_user_changes_are_recorded_without_secrets(ctx):
    start = _newest(ctx)
    users.create_user(ctx, "alice", PASSWORD, ["level2"], "Alice", by="admin")
    token = users.issue_token(ctx, "alice", PASSWORD).token
    users.set_roles(ctx, "alice", ["level3", "level2"], by="admin")
    users.set_roles(ctx, "alice", ["level2", "level3"], by="admin")  # the same: no event
    admin = users.sign_in(ctx, "admin", PASSWORD)
    temporary = users.reset_password(ctx, admin, "alice")
    alice = users.sign_in_account(ctx, "alice", temporary).actor
    users.change_password(ctx, alice, temporary, NEW_PASSWORD)
    second_token = users.issue_token(ctx, "alice", NEW_PASSWORD).token
    users.set_active(ctx, "alice", False, by="admin")
    users.set_active(ctx, "alice", True, by="admin")

    recorded = _since(ctx, start)
    assert [(actor, type_) for actor, type_, _ in recorded] == [
        ("admin", types.USER_CREATED),
        ("alice", types.TOKEN_ISSUED),
        ("admin", types.USER_ROLES_CHANGED),
        ("admin", types.PASSWORD_RESET),
        ("admin", types.TOKENS_REVOKED),
        ("alice", types.PASSWORD_CHANGED),
        ("alice", types.TOKEN_ISSUED),
        ("admin", types.USER_DEACTIVATED),
        ("admin", types.TOKENS_REVOKED),
        ("admin", types.USER_ACTIVATED),
    ]
    data = [d for _, _, d in recorded]
    assert data[0] == {"username": "alice", "display_name": "Alice", "roles": ["level2"]}
    assert data[2] == {"username": "alice", "before": ["level2"], "after": ["level2", "level3"]}
    assert data[4] == {"username": "alice", "count": 1, "reason": "password reset"}
    assert data[8] == {"username": "alice", "count": 1, "reason": "deactivated"}
    assert all(d["username"] == "alice" for d in data)
    written = json.dumps(data)
    for secret in (PASSWORD, temporary, NEW_PASSWORD, token, second_token, "scrypt"):
        assert secret not in written
    assert verify_all(ctx).failure is None


def test_sla_policy_and_calendar_changes_are_recorded(ctx):
    start = _newest(ctx)
    policies.update_policy(ctx, MANAGER, 3, {"response_seconds": 5400}, note="busier desk")
    policies.update_policy(ctx, MANAGER, 3, {"response_seconds": 5400})  # unchanged: no event
    weekly = {"mon": [{"start": "09:00", "end": "17:00"}]}
    body = {"name": "branch", "timezone": "Asia/Taipei", "weekly": weekly}
    calendars.create_calendar(ctx, MANAGER, {**body, "use_taiwan_holidays": False})
    calendars.replace_calendar(ctx, MANAGER, "branch", {**body, "timezone": "UTC"})
    calendars.delete_calendar(ctx, MANAGER, "branch")

    recorded = _since(ctx, start)
    assert [(a, t) for a, t, _ in recorded] == [
        ("manager", types.SLA_POLICY_CHANGED),
        ("manager", types.CALENDAR_CREATED),
        ("manager", types.CALENDAR_CHANGED),
        ("manager", types.CALENDAR_DELETED),
    ]
    policy = recorded[0][2]
    assert (policy["priority"], policy["after"], policy["note"]) == (
        3,
        {"response_seconds": 5400},
        "busier desk",
    )
    assert list(policy["before"]) == ["response_seconds"]
    assert policy["before"]["response_seconds"] != 5400
    created, changed, deleted = (d for _, _, d in recorded[1:])
    assert (created["name"], created["timezone"]) == ("branch", "Asia/Taipei")
    assert created["definition"]["weekly"]["mon"] == [["09:00", "17:00"]]
    assert (changed["before"]["timezone"], changed["after"]["timezone"]) == ("Asia/Taipei", "UTC")
    assert (deleted["name"], deleted["timezone"]) == ("branch", "UTC")
    assert verify_all(ctx).failure is None


def test_deployments_and_drafts_are_recorded(ctx):
    start = _newest(ctx)
    bundled = definitions.BUNDLED_PROCESS.read_bytes()
    info = definitions.deploy(ctx, DESIGNER, bundled, "again")
    draft = drafts.create_draft(ctx, DESIGNER)
    edited = bundled.replace(b'name="Initial handling"', b'name="First-line handling"')
    saved = drafts.save_draft(ctx, DESIGNER, draft["id"], edited, draft["revision"])
    from_draft = drafts.deploy_draft(ctx, DESIGNER, draft["id"], "from the draft")
    drafts.delete_draft(ctx, DESIGNER, draft["id"])

    recorded = _since(ctx, start)
    assert [(a, t) for a, t, _ in recorded] == [
        ("designer", types.PROCESS_DEPLOYED),
        ("designer", types.DRAFT_CREATED),
        ("designer", types.DRAFT_SAVED),
        ("designer", types.PROCESS_DEPLOYED),
        ("designer", types.DRAFT_DEPLOYED),
        ("designer", types.DRAFT_DELETED),
    ]
    deployed, created, saved_event, deployed_draft, draft_deployed, deleted = (
        d for _, _, d in recorded
    )
    assert (deployed["key"], deployed["version"], deployed["note"]) == (
        info.key,
        info.version,
        "again",
    )
    assert re.fullmatch(r"[0-9a-f]{64}", deployed["bpmn_sha256"])
    assert created["bpmn_sha256"] == deployed["bpmn_sha256"]  # a copy of the latest version
    assert saved_event["revision"] == saved["revision"]
    assert saved_event["bpmn_sha256"] != created["bpmn_sha256"]
    assert deployed_draft["bpmn_sha256"] == saved_event["bpmn_sha256"]
    assert draft_deployed == {
        "draft_id": draft["id"],
        "revision": saved["revision"],
        "key": from_draft.key,
        "version": from_draft.version,
    }
    assert deleted["draft_id"] == draft["id"]
    assert verify_all(ctx).failure is None


def test_an_unknown_event_type_is_refused(ctx):
    with (
        pytest.raises(ValueError, match="unknown administration event type"),
        ctx.db.write() as session,
    ):
        types.record(session, "admin", "coffee_made", ctx.now())


# -- the API ---------------------------------------------------------------------------------


def test_api_lists_newest_first_with_total(api, ctx):
    users.create_user(ctx, "bob", PASSWORD, ["level2"], by="admin")
    page = api.ok(api.get("admin", "/audit/admin-events?limit=2"))
    assert set(page) == {"items", "total"}
    newest, older = page["items"]
    assert newest["sequence"] == page["total"] and older["sequence"] == page["total"] - 1
    assert (newest["type"], newest["actor"], newest["data"]["username"]) == (
        types.USER_CREATED,
        "admin",
        "bob",
    )
    assert set(newest) == {"id", "sequence", "at", "actor", "type", "data"}
    shifted = api.ok(api.get("admin", "/audit/admin-events?limit=1&offset=1"))
    assert shifted["items"] == [older]
    everything = api.ok(api.get("admin", "/audit/admin-events?limit=200"))
    assert len(everything["items"]) == everything["total"] == newest["sequence"]
    assert api.ok(api.get("admin", "/audit/admin-events"))["items"][:2] == [newest, older]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
    ],
)
def test_api_paging_errors_name_the_parameter(api, query, field):
    response = api.get("admin", f"/audit/admin-events?{query}")
    assert response.status_code == 422
    assert field in json.dumps(response.get_json())


def test_api_is_for_administrators(api):
    assert api.get("manager", "/audit/admin-events").status_code == 403
    assert api.get("designer", "/audit/admin-events?limit=0").status_code == 403
    assert api.get(None, "/audit/admin-events").status_code == 401


def test_api_total_stops_counting_at_the_contract_limit(api, monkeypatch):
    monkeypatch.setattr("web.api.audit.EXACT_TOTAL_UP_TO", 5)
    page = api.ok(api.get("admin", "/audit/admin-events?limit=1"))
    assert (page["total"], page["total_exact"]) == (5, False)


# -- the page --------------------------------------------------------------------------------


@pytest.fixture
def admin(browser: Browser) -> Browser:
    browser.login("admin")
    return browser


def _tbody(html: str) -> str:
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def _rows(html: str) -> int:
    return _tbody(html).count("<tr>")


def test_page_shows_events_newest_first_25_per_page(admin, ctx):
    users.create_user(ctx, "carol", PASSWORD, ["level3"], "Carol", by="admin")
    with ctx.db.read() as session:
        total = len(session.scalars(select(AdminEvent.id)).all())
    assert total > 25  # the template's users and tokens, and carol
    assert admin.post("/language", {"locale": "en"}).status_code == 302
    first = admin.get(PAGE)
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert _rows(html) == 25
    assert html.index("User created") < html.index("API token issued")  # carol's is newest
    assert ">carol<" in html and "Carol" in html
    assert f"{total} administration events" in html
    assert 'href="/admin/audit?page=2"' in html
    last = admin.get(f"{PAGE}?page=2").get_data(as_text=True)
    assert _rows(last) == total - 25
    past_the_end = admin.get(f"{PAGE}?page=999").get_data(as_text=True)
    assert _tbody(past_the_end) == _tbody(last)


def test_page_is_in_traditional_chinese_by_default(admin):
    html = admin.get(PAGE).get_data(as_text=True)
    assert "稽核軌跡" in html and "已核發 API 權杖" in html


def test_a_bad_page_number_is_422_naming_it(admin):
    assert admin.post("/language", {"locale": "en"}).status_code == 302
    response = admin.get(f"{PAGE}?page=abc")
    assert response.status_code == 422
    assert "The page must be a whole number" in response.get_data(as_text=True)


def test_every_event_type_has_a_label_on_the_page():
    assert set(EVENT_LABELS) == types.ADMIN_EVENT_TYPES


def test_the_admin_navigation_links_the_page(admin):
    users_page = admin.get("/admin/users").get_data(as_text=True)
    assert f'href="{PAGE}"' in users_page


@pytest.mark.parametrize("username", ["manager", "designer", "desk"])
def test_page_is_for_administrators_only(browser, username):
    browser.login(username)
    assert browser.get(PAGE).status_code == 403
    assert f'href="{PAGE}"' not in browser.get("/").get_data(as_text=True)


def test_admin_pages_record_the_signed_in_administrator(admin, ctx):
    start = _newest(ctx)
    response = admin.post(
        "/admin/users",
        {"username": "dave", "password": NEW_PASSWORD, "roles": ["level2"]},
        csrf_from="/admin/users",
    )
    assert response.status_code == 302
    assert admin.post("/admin/users/dave/roles", {"roles": ["level3"]}).status_code == 302
    assert admin.post("/admin/users/dave/active", {"active": "0"}).status_code == 302
    assert [(a, t) for a, t, _ in _since(ctx, start)] == [
        ("admin", types.USER_CREATED),
        ("admin", types.USER_ROLES_CHANGED),
        ("admin", types.USER_DEACTIVATED),
    ]
