"""SLA policies: versioned targets per priority, the API, the manager's page, the migration."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, inspect, select

from engine.domain.sla import DEFAULT_STAGE_TARGETS
from engine.persistence.migrate import alembic_config
from engine.persistence.models import BusinessCalendar, SlaPolicy, SlaPolicyVersion
from engine.services.context import Actor
from engine.services.errors import Forbidden, Invalid, NotFound
from engine.services.sla import policies as sla_policies
from tests.scenario import Scenario

HOUR = 3600
DEFAULTS = [  # the contract's table
    {"priority": 1, "response_seconds": 15 * 60, "resolution_seconds": 4 * HOUR},
    {"priority": 2, "response_seconds": 30 * 60, "resolution_seconds": 12 * HOUR},
    {"priority": 3, "response_seconds": 2 * HOUR, "resolution_seconds": 24 * HOUR},
    {"priority": 4, "response_seconds": 8 * HOUR, "resolution_seconds": 72 * HOUR},
    {"priority": 5, "response_seconds": 24 * HOUR, "resolution_seconds": 168 * HOUR},
]


def default_stages(priority: int) -> dict:
    return {
        stage: {"target_seconds": seconds, "calendar": None}
        for stage, seconds in DEFAULT_STAGE_TARGETS[priority].items()
    }


MANAGER = Actor(id=0, username="manager", roles=frozenset({"incident_manager"}))


def _due(incident: dict) -> datetime:
    return datetime.fromisoformat(incident["sla"]["resolution_due"])


# -- API: read ---------------------------------------------------------------------------


def test_get_lists_the_contract_defaults(api):
    policies = api.ok(api.get("manager", "/sla/policies"))
    assert policies == [
        {**d, "calendar": "24x7", "version": 1, "stages": default_stages(d["priority"])}
        for d in DEFAULTS
    ]


@pytest.mark.parametrize("user", ["desk", "l2", "director", "designer", "admin"])
def test_staff_may_read(api, user):
    assert len(api.ok(api.get(user, "/sla/policies"))) == 5


@pytest.mark.parametrize("user", ["reporter", "vendor"])
def test_reporters_and_vendors_may_not_read(api, user):
    assert api.get(user, "/sla/policies").status_code == 403


def test_signed_out_is_401(api):
    assert api.get(None, "/sla/policies").status_code == 401
    assert api.call(None, "PUT", "/sla/policies/1", {"calendar": "24x7"}).status_code == 401


# -- API: change ---------------------------------------------------------------------------


def test_put_changes_targets_and_bumps_version(api, ctx):
    body = api.ok(api.call("manager", "PUT", "/sla/policies/2", {"resolution_seconds": 8 * HOUR}))
    assert body == {
        "priority": 2,
        "response_seconds": 30 * 60,
        "resolution_seconds": 8 * HOUR,
        "calendar": "24x7",
        "version": 2,
        "stages": default_stages(2),
    }
    body = api.ok(
        api.call(
            "manager",
            "PUT",
            "/sla/policies/2",
            {"response_seconds": 20 * 60, "calendar": "taiwan_business_hours"},
        )
    )
    assert (body["response_seconds"], body["calendar"], body["version"]) == (
        20 * 60,
        "taiwan_business_hours",
        3,
    )
    listed = api.ok(api.get("desk", "/sla/policies"))
    assert listed[1] == body
    assert [p["version"] for p in listed] == [1, 3, 1, 1, 1]

    history = sla_policies.policy_history(ctx, 2)
    assert [h["version"] for h in history] == [3, 2, 1]
    assert [h["changed_by"] for h in history] == ["manager", "manager", "system"]
    assert history[0]["calendar"] == "taiwan_business_hours"
    assert history[1]["resolution_seconds"] == 8 * HOUR
    assert history[2]["resolution_seconds"] == 12 * HOUR


def test_put_with_unchanged_values_makes_no_new_version(api, ctx):
    body = api.ok(api.call("manager", "PUT", "/sla/policies/3", {"calendar": "24x7"}))
    assert body["version"] == 1
    assert len(sla_policies.policy_history(ctx, 3)) == 1


def test_change_applies_only_to_incidents_created_afterwards(api, clock):
    before = Scenario(api)  # priority 5 once recorded (impact 3, urgency 3)
    clock.advance(minutes=1)
    api.ok(api.call("manager", "PUT", "/sla/policies/5", {"resolution_seconds": 100 * HOUR}))
    clock.advance(minutes=1)
    after = Scenario(api)
    created_before = datetime.fromisoformat(before.incident["created_at"])
    created_after = datetime.fromisoformat(after.incident["created_at"])

    clock.advance(minutes=5)
    before.record()
    after.record()
    assert before.incident["priority"] == after.incident["priority"] == 5
    assert _due(before.refresh()) == created_before + timedelta(hours=168)
    assert _due(after.refresh()) == created_after + timedelta(hours=100)

    # A later change moves neither of them.
    api.ok(api.call("manager", "PUT", "/sla/policies/5", {"resolution_seconds": 50 * HOUR}))
    api.ok(api.patch("desk", f"/incidents/{before.id}", {"impact": "3", "urgency": "3"}))
    assert _due(before.refresh()) == created_before + timedelta(hours=168)
    assert _due(after.refresh()) == created_after + timedelta(hours=100)


@pytest.mark.parametrize("user", ["desk", "designer", "reporter", "director", "admin", "vendor"])
def test_only_the_incident_manager_may_change(api, user):
    response = api.call(user, "PUT", "/sla/policies/1", {"response_seconds": 60})
    assert response.status_code == 403
    assert api.ok(api.get("manager", "/sla/policies"))[0]["response_seconds"] == 15 * 60


@pytest.mark.parametrize("priority", ["0", "6", "x", "-1", "1.0", "01"])
def test_unknown_priority_is_404(api, priority):
    response = api.call("manager", "PUT", f"/sla/policies/{priority}", {"response_seconds": 60})
    assert response.status_code == 404
    assert response.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"response_seconds": -60}, {"response_seconds"}),
        ({"response_seconds": 0}, {"response_seconds"}),
        ({"resolution_seconds": 0}, {"resolution_seconds"}),
        ({"response_seconds": 90.5}, {"response_seconds"}),
        ({"response_seconds": 900.0}, {"response_seconds"}),
        ({"response_seconds": "900"}, {"response_seconds"}),
        ({"resolution_seconds": True}, {"resolution_seconds"}),
        ({"response_seconds": None}, {"response_seconds"}),
        ({"resolution_seconds": 10**12}, {"resolution_seconds"}),
        ({"calendar": "mars_hours"}, {"calendar"}),
        ({"calendar": ""}, {"calendar"}),
        ({"calendar": 7}, {"calendar"}),
        ({"colour": "red"}, {"colour"}),
        ({"response_seconds": 60, "version": 9}, {"version"}),
        ({"response_seconds": 4 * HOUR}, {"response_seconds"}),  # = P1 resolution
        ({"response_seconds": 5 * HOUR}, {"response_seconds"}),
        ({"resolution_seconds": 10 * 60}, {"resolution_seconds"}),  # < P1 response
        ({"response_seconds": 5 * HOUR, "resolution_seconds": 4 * HOUR}, {"response_seconds"}),
        (
            {"response_seconds": 2 * HOUR, "resolution_seconds": HOUR},
            {"response_seconds", "resolution_seconds"},
        ),
        ({}, set()),
        ([], set()),
        ("15 minutes", set()),
    ],
)
def test_invalid_values_are_422_naming_fields(api, ctx, body, fields):
    response = api.call("manager", "PUT", "/sla/policies/1", body)
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["details"]
    assert set(details) == fields
    assert all(isinstance(m, str) and m for m in details.values())
    assert api.ok(api.get("manager", "/sla/policies"))[0]["version"] == 1
    assert len(sla_policies.policy_history(ctx, 1)) == 1


def test_malformed_body_is_400(api):
    response = api.call(
        "manager",
        "PUT",
        "/sla/policies/1",
        data="{nope",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert api.call("manager", "PUT", "/sla/policies/1").status_code == 400


# -- service ---------------------------------------------------------------------------


def test_service_rules(ctx):
    desk = Actor(id=0, username="desk", roles=frozenset({"service_desk"}))
    with pytest.raises(Forbidden):
        sla_policies.update_policy(ctx, desk, 1, {"response_seconds": 60})
    with pytest.raises(NotFound):
        sla_policies.update_policy(ctx, MANAGER, True, {"response_seconds": 60})
    with pytest.raises(NotFound):
        sla_policies.policy_history(ctx, 9)
    with pytest.raises(Invalid) as info:
        sla_policies.update_policy(ctx, MANAGER, 1, {"response_seconds": 60}, note="x" * 501)
    assert set(info.value.details) == {"note"}
    policy = sla_policies.update_policy(ctx, MANAGER, "4", {"response_seconds": 60}, note="why")
    assert policy["version"] == 2
    assert sla_policies.policy_history(ctx, 4)[0]["note"] == "why"
    assert sla_policies.calendar_names(ctx) == ["24x7", "taiwan_business_hours"]


def test_seeded_calendars_and_versions(ctx):
    with ctx.db.read() as session:
        calendars = {
            c.name: (c.timezone, c.definition) for c in session.scalars(select(BusinessCalendar))
        }
        versions = session.scalars(select(SlaPolicyVersion).order_by(SlaPolicyVersion.priority))
        seeded = [
            (v.priority, v.version, v.response_seconds, v.resolution_seconds, v.calendar)
            for v in versions
        ]
    assert set(calendars) == {"24x7", "taiwan_business_hours"}
    assert calendars["24x7"][1] == {}
    timezone, definition = calendars["taiwan_business_hours"]
    assert timezone == definition["timezone"] == "Asia/Taipei"
    assert definition["use_taiwan_holidays"] is True
    day = [["09:00", "12:00"], ["13:00", "18:00"]]
    assert definition["weekly"] == {d: day for d in ("mon", "tue", "wed", "thu", "fri")}
    assert seeded == [
        (d["priority"], 1, d["response_seconds"], d["resolution_seconds"], "24x7") for d in DEFAULTS
    ]


# -- the page ------------------------------------------------------------------------------


def _policy_row(page: str, priority: int) -> str:
    match = re.search(rf'<tr id="policy-{priority}">(.*?)</tr>', page, re.S)
    assert match, page[:2000]
    return match.group(1)


def test_manager_edits_targets_on_the_page(browser, api):
    browser.login("manager")
    page = browser.get("/sla/policies")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'href="/sla/policies"' in text  # in the navigation
    assert 'data-seconds="900"' in _policy_row(text, 1)
    assert "taiwan_business_hours" in text

    response = browser.post(
        "/sla/policies/1",
        {
            "response_value": "20",
            "response_unit": "minutes",
            "resolution_value": "3",
            "resolution_unit": "hours",
            "calendar": "taiwan_business_hours",
            "note": "office hours only",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sla/policies")
    text = browser.get("/sla/policies").get_data(as_text=True)
    row = _policy_row(text, 1)
    assert 'data-seconds="1200"' in row and 'data-seconds="10800"' in row
    assert "<td>2</td>" in row
    assert "office hours only" in text  # in the history
    assert api.ok(api.get("manager", "/sla/policies"))[0] == {
        "priority": 1,
        "response_seconds": 1200,
        "resolution_seconds": 10800,
        "calendar": "taiwan_business_hours",
        "version": 2,
        "stages": default_stages(1),
    }


@pytest.mark.parametrize(
    ("form", "field_id"),
    [
        ({"response_value": "0"}, "p1-response"),
        ({"response_value": "abc"}, "p1-response"),
        ({"response_value": "-5"}, "p1-response"),
        ({"resolution_value": "1.5"}, "p1-resolution"),
        ({"response_value": "5", "response_unit": "hours"}, "p1-response"),
        ({"resolution_value": "10", "resolution_unit": "minutes"}, "p1-resolution"),
        ({"calendar": "mars_hours"}, "p1-calendar"),
    ],
)
def test_page_shows_errors_next_to_fields_with_typed_values(browser, api, form, field_id):
    browser.login("manager")
    data = {
        "response_value": "15",
        "response_unit": "minutes",
        "resolution_value": "4",
        "resolution_unit": "hours",
        "calendar": "24x7",
        **form,
    }
    response = browser.post("/sla/policies/1", data)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert f'id="{field_id}-message"' in text
    assert '<details class="card" id="edit-1" open>' in text
    assert text.count('class="message"') == 1  # only the field at fault
    for name in ("response_value", "resolution_value"):
        if name in form:
            assert f'value="{form[name]}"' in text
    assert api.ok(api.get("manager", "/sla/policies"))[0]["version"] == 1


def test_page_unchanged_submit_makes_no_version(browser, api):
    browser.login("manager")
    data = {
        "response_value": "30",
        "response_unit": "minutes",
        "resolution_value": "12",
        "resolution_unit": "hours",
        "calendar": "24x7",
    }
    assert browser.post("/sla/policies/2", data).status_code == 302
    assert api.ok(api.get("manager", "/sla/policies"))[1]["version"] == 1


@pytest.mark.parametrize("user", ["desk", "designer", "reporter", "admin"])
def test_page_is_only_for_the_incident_manager(browser, user):
    browser.login(user)
    assert browser.get("/sla/policies").status_code == 403
    assert browser.post("/sla/policies/1", {"response_value": "1"}).status_code == 403
    assert 'href="/sla/policies"' not in browser.get("/incidents").get_data(as_text=True)


def test_page_post_needs_csrf_and_a_known_priority(browser, api):
    browser.login("manager")
    data = {
        "response_value": "1",
        "response_unit": "minutes",
        "resolution_value": "1",
        "resolution_unit": "hours",
        "calendar": "24x7",
    }
    assert browser.post("/sla/policies/1", data, with_csrf=False).status_code == 400
    assert browser.post("/sla/policies/6", data).status_code == 404
    assert browser.post("/sla/policies/x", data).status_code == 404
    assert api.ok(api.get("manager", "/sla/policies"))[0]["version"] == 1


def test_signed_out_visitor_is_sent_to_sign_in(browser):
    response = browser.get("/sla/policies")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# -- migration ---------------------------------------------------------------------------


def test_migration_round_trips(ctx):
    """0005 down and up again; the versions are reseeded from the targets in force."""
    sla_policies.update_policy(ctx, MANAGER, 3, {"response_seconds": HOUR})
    config = alembic_config()

    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    tables = set(inspect(ctx.db.engine).get_table_names())
    assert "sla_policy_versions" not in tables and "business_calendars" not in tables
    assert "sla_policies" in tables

    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SlaPolicyVersion)) == 5
        p3 = session.scalar(select(SlaPolicyVersion).where(SlaPolicyVersion.priority == 3))
        assert p3 is not None and (p3.version, p3.response_seconds) == (2, HOUR)
        assert session.get(SlaPolicy, 3).version == 2  # type: ignore[union-attr]
        assert session.get(BusinessCalendar, "taiwan_business_hours") is not None
    # and the service works on the re-created tables
    assert (
        sla_policies.update_policy(ctx, MANAGER, 3, {"response_seconds": 2 * HOUR})["version"] == 3
    )


def test_business_hours_calendar_drives_due_times_and_thresholds(api, ctx, clock, browser):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from engine.services.incidents.timers import fire_due
    from tests.scenario import Scenario

    taipei = ZoneInfo("Asia/Taipei")
    clock.now = datetime(2026, 11, 30, 10, 0, tzinfo=taipei).astimezone(UTC)  # a Monday
    changed = api.call("manager", "PUT", "/sla/policies/3", {"calendar": "taiwan_business_hours"})
    assert changed.status_code == 200, changed.get_json()
    s = Scenario(api)
    s.record(impact="2", urgency="2")  # P3: response 2 h, resolution 24 h of working time
    due = datetime.fromisoformat(s.refresh()["sla"]["resolution_due"]).astimezone(taipei)
    # Mon 10-12 + 13-18 (7 h), Tue 8 h, Wed 8 h, then Thu 09:00-10:00.
    assert due == datetime(2026, 12, 3, 10, 0, tzinfo=taipei)
    policy = s.incident["sla"]["policy"]
    assert (policy["priority"], policy["version"], policy["calendar"]) == (
        3,
        2,
        "taiwan_business_hours",
    )
    browser.login("manager")
    page = browser.get(f"/incidents/{s.id}").get_data(as_text=True)
    assert "P3，版本 2，行事曆：台灣上班時間" in page  # the clock's policy, in zh-Hant
    # 50 % (12 working hours) falls on Tuesday 15:00, not 12 wall-clock hours later.
    # The service desk's stage (4 working hours at P3) ran out on Monday at 15:00.
    clock.now = datetime(2026, 11, 30, 22, 0, tzinfo=taipei).astimezone(UTC)
    assert fire_due(ctx) == 3
    clock.now = datetime(2026, 12, 1, 14, 59, tzinfo=taipei).astimezone(UTC)
    assert fire_due(ctx) == 0
    clock.now = datetime(2026, 12, 1, 15, 0, tzinfo=taipei).astimezone(UTC)
    assert fire_due(ctx) == 1
    detail = s.refresh()
    warnings = [e for e in detail["events"] if e["type"] == "sla_warning"]
    assert [(e["clock"], e["percent"]) for e in warnings] == [
        ("service_desk", 50),
        ("service_desk", 75),
        ("resolution", 50),
    ]
