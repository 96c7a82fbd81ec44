"""Business calendars: the API, the manager's page, and what a new calendar does to clocks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.persistence.models import BusinessCalendar, SlaPolicy
from engine.services.context import Actor
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.services.sla import calendars
from engine.services.sla.snapshot import take_snapshot
from tests.scenario import Scenario

TAIPEI = ZoneInfo("Asia/Taipei")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MANAGER = Actor(id=0, username="manager", roles=frozenset({"incident_manager"}))
MORNINGS = [{"start": "08:00", "end": "12:00"}]
SPLIT = [{"start": "08:30", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]


def _body(name: str = "taipei_office", **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": name,
        "timezone": "Asia/Taipei",
        "weekly": {day: SPLIT for day in WEEKDAYS[:5]},
        "holidays": ["2026-12-25"],
        "extra_days_off": ["2026-12-31"],
        "makeup_working_days": ["2026-12-19"],
        "use_taiwan_holidays": False,
    }
    body.update(changes)
    return body


def _expected(body: dict[str, object], used_by: list[int] | None = None) -> dict[str, object]:
    weekly = body["weekly"]
    assert isinstance(weekly, dict)
    return {
        "name": body["name"],
        "timezone": body["timezone"],
        "weekly": {day: weekly.get(day, []) for day in WEEKDAYS},
        "holidays": body.get("holidays", []),
        "extra_days_off": body.get("extra_days_off", []),
        "makeup_working_days": body.get("makeup_working_days", []),
        "use_taiwan_holidays": body.get("use_taiwan_holidays", True),
        "builtin": False,
        "used_by": used_by or [],
    }


def _names(api) -> list[str]:
    return [c["name"] for c in api.ok(api.get("manager", "/sla/calendars"))]


# -- API: read ---------------------------------------------------------------------------


def test_list_starts_with_the_builtin_24x7(api):
    listed = api.ok(api.get("desk", "/sla/calendars"))
    assert [c["name"] for c in listed] == ["24x7", "taiwan_business_hours"]
    always, taiwan = listed
    assert always["builtin"] is True
    assert always["used_by"] == [1, 2, 3, 4, 5]
    assert always["weekly"] == {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}
    office = [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
    assert taiwan == {
        "name": "taiwan_business_hours",
        "timezone": "Asia/Taipei",
        "weekly": {day: office if day not in ("sat", "sun") else [] for day in WEEKDAYS},
        "holidays": [],
        "extra_days_off": [],
        "makeup_working_days": [],
        "use_taiwan_holidays": True,
        "builtin": False,
        "used_by": [],
    }
    assert api.ok(api.get("l2", "/sla/calendars/taiwan_business_hours")) == taiwan
    assert api.ok(api.get("l2", "/sla/calendars/24x7")) == always


@pytest.mark.parametrize("user", ["desk", "l2", "l3", "director", "designer", "admin"])
def test_staff_may_read(api, user):
    assert len(api.ok(api.get(user, "/sla/calendars"))) == 2
    api.ok(api.get(user, "/sla/calendars/taiwan_business_hours"))


@pytest.mark.parametrize("user", ["reporter", "vendor"])
def test_reporters_and_vendors_may_not_read(api, user):
    assert api.get(user, "/sla/calendars").status_code == 403
    assert api.get(user, "/sla/calendars/taiwan_business_hours").status_code == 403


def test_signed_out_is_401(api):
    assert api.get(None, "/sla/calendars").status_code == 401
    assert api.post(None, "/sla/calendars", _body()).status_code == 401
    assert api.call(None, "DELETE", "/sla/calendars/taiwan_business_hours").status_code == 401


@pytest.mark.parametrize("name", ["nope", "Taiwan_Business_Hours", "a-b", "x" * 81, "%20"])
def test_unknown_calendar_is_404(api, name):
    assert api.get("manager", f"/sla/calendars/{name}").status_code == 404
    response = api.call("manager", "PUT", f"/sla/calendars/{name}", _body(name))
    assert response.status_code == 404
    assert response.get_json()["error"]
    assert api.call("manager", "DELETE", f"/sla/calendars/{name}").status_code == 404


# -- API: create, replace, delete ---------------------------------------------------------


def test_create_read_replace_delete(api, ctx):
    body = _body()
    created = api.ok(api.post("manager", "/sla/calendars", body), 201)
    assert created == _expected(body)
    assert api.ok(api.get("desk", "/sla/calendars/taipei_office")) == created
    assert _names(api) == ["24x7", "taipei_office", "taiwan_business_hours"]

    # Stored as the migration seeds calendars (weekly as pairs, only working days).
    with ctx.db.read() as session:
        row = session.get(BusinessCalendar, "taipei_office")
        assert row is not None
        assert row.timezone == "Asia/Taipei"
        assert row.definition == {
            "timezone": "Asia/Taipei",
            "weekly": {day: [["08:30", "12:00"], ["13:30", "17:30"]] for day in WEEKDAYS[:5]},
            "holidays": ["2026-12-25"],
            "extra_days_off": ["2026-12-31"],
            "makeup_working_days": ["2026-12-19"],
            "use_taiwan_holidays": False,
        }

    # PUT replaces everything; omitted date lists become empty, Taiwan holidays default on.
    replacement = {
        "timezone": "Europe/London",
        "weekly": {"sat": [{"start": "10:00", "end": "24:00"}], "mon": MORNINGS},
    }
    replaced = api.ok(api.call("manager", "PUT", "/sla/calendars/taipei_office", replacement))
    assert replaced == _expected({"name": "taipei_office", **replacement})
    assert replaced["use_taiwan_holidays"] is True
    assert api.ok(api.get("manager", "/sla/calendars/taipei_office")) == replaced

    # What GET answers can be sent back unchanged.
    again = api.ok(api.call("manager", "PUT", "/sla/calendars/taipei_office", replaced))
    assert again == replaced

    response = api.call("manager", "DELETE", "/sla/calendars/taipei_office")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert api.get("manager", "/sla/calendars/taipei_office").status_code == 404
    assert _names(api) == ["24x7", "taiwan_business_hours"]


def test_dates_and_periods_are_normalised(api):
    body = _body(
        holidays=["2027-01-01", "2026-12-25", "2027-01-01"],
        weekly={"mon": [{"start": "00:00", "end": "00:00"}], "fri": SPLIT},
    )
    created = api.ok(api.post("manager", "/sla/calendars", body), 201)
    assert created["holidays"] == ["2026-12-25", "2027-01-01"]
    assert created["weekly"]["mon"] == [{"start": "00:00", "end": "24:00"}]  # the whole day
    assert created["weekly"]["fri"] == SPLIT


def test_the_seeded_calendar_can_be_edited(api):
    body = _body("taiwan_business_hours", use_taiwan_holidays=True)
    del body["name"]
    changed = api.ok(api.call("manager", "PUT", "/sla/calendars/taiwan_business_hours", body))
    assert changed["weekly"]["mon"] == SPLIT
    assert changed["use_taiwan_holidays"] is True


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        # working hours, named by weekday
        (
            {
                "weekly": {
                    "mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
                }
            },
            {"weekly.mon"},
        ),
        (
            {
                "weekly": {
                    "tue": [{"start": "13:00", "end": "17:00"}, {"start": "08:00", "end": "12:00"}]
                }
            },
            {"weekly.tue"},
        ),
        ({"weekly": {"wed": [{"start": "12:00", "end": "12:00"}]}}, {"weekly.wed"}),
        ({"weekly": {"wed": [{"start": "18:00", "end": "09:00"}]}}, {"weekly.wed"}),
        ({"weekly": {"thu": [{"start": "8:30", "end": "12:00"}]}}, {"weekly.thu"}),
        ({"weekly": {"thu": [{"start": "24:00", "end": "24:00"}]}}, {"weekly.thu"}),
        ({"weekly": {"fri": [{"start": "09:00", "end": "12:60"}]}}, {"weekly.fri"}),
        ({"weekly": {"fri": [{"start": "09:00"}]}}, {"weekly.fri"}),
        ({"weekly": {"sat": "09:00-12:00"}}, {"weekly.sat"}),
        ({"weekly": {"sun": [["09:00", "12:00"]]}}, {"weekly.sun"}),
        ({"weekly": {"mon": MORNINGS, "funday": MORNINGS}}, {"weekly.funday"}),
        ({"weekly": {"Monday": MORNINGS}}, {"weekly.Monday"}),
        (
            {"weekly": {"mon": [{"start": "x", "end": "y"}], "tue": [{"start": "9", "end": "1"}]}},
            {"weekly.mon", "weekly.tue"},
        ),
        ({"weekly": []}, {"weekly"}),
        ({"weekly": {}}, {"weekly"}),  # no working time at all
        ({"weekly": {day: [] for day in WEEKDAYS}}, {"weekly"}),
        # time zone
        ({"timezone": "Mars/Olympus_Mons"}, {"timezone"}),
        ({"timezone": "localtime"}, {"timezone"}),
        ({"timezone": ""}, {"timezone"}),
        ({"timezone": 8}, {"timezone"}),
        ({"timezone": "../../etc/passwd"}, {"timezone"}),
        # dates
        ({"holidays": ["2026-02-30"]}, {"holidays"}),
        ({"holidays": ["2026/12/25"]}, {"holidays"}),
        ({"extra_days_off": ["2026-1-5"]}, {"extra_days_off"}),
        ({"extra_days_off": "2026-12-31"}, {"extra_days_off"}),
        ({"makeup_working_days": [20261219]}, {"makeup_working_days"}),
        ({"makeup_working_days": ["2026-12-31"]}, {"makeup_working_days"}),  # also a day off
        # make-up days are worked with Monday's hours
        (
            {"weekly": {"sat": MORNINGS}, "use_taiwan_holidays": True, "makeup_working_days": []},
            {"weekly.mon"},
        ),
        ({"weekly": {"sat": MORNINGS}}, {"weekly.mon"}),
        # name and the rest
        ({"name": "Taipei"}, {"name"}),
        ({"name": "taipei-office"}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 81}, {"name"}),
        ({"name": 7}, {"name"}),
        ({"name": "24x7"}, {"name"}),
        ({"use_taiwan_holidays": "yes"}, {"use_taiwan_holidays"}),
        ({"colour": "red"}, {"colour"}),
        (
            {"timezone": "Nowhere/City", "holidays": ["soon"], "name": "A"},
            {"timezone", "holidays", "name"},
        ),
    ],
)
def test_invalid_calendars_are_422_naming_fields(api, changes, fields):
    response = api.post("manager", "/sla/calendars", _body(**changes))
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["details"]
    assert set(details) == fields
    assert all(isinstance(m, str) and m for m in details.values())
    assert _names(api) == ["24x7", "taiwan_business_hours"]


@pytest.mark.parametrize("missing", ["name", "timezone", "weekly"])
def test_required_fields(api, missing):
    body = _body()
    del body[missing]
    response = api.post("manager", "/sla/calendars", body)
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {missing}


@pytest.mark.parametrize("body", [[], "calendar", 7, None])
def test_a_body_that_is_no_object_is_422(api, body):
    response = api.call(
        "manager",
        "POST",
        "/sla/calendars",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.get_json()["details"] == {}


def test_malformed_body_is_400(api):
    headers = {"Content-Type": "application/json"}
    assert (
        api.call("manager", "POST", "/sla/calendars", data="{no", headers=headers).status_code
        == 400
    )
    assert api.call("manager", "POST", "/sla/calendars").status_code == 400
    assert (
        api.call(
            "manager", "PUT", "/sla/calendars/taiwan_business_hours", data="{no", headers=headers
        )
    ).status_code == 400


def test_invalid_replacement_is_422_and_changes_nothing(api):
    before = api.ok(api.get("manager", "/sla/calendars/taiwan_business_hours"))
    body = _body(weekly={"fri": [{"start": "17:00", "end": "09:00"}]})
    del body["name"]
    response = api.call("manager", "PUT", "/sla/calendars/taiwan_business_hours", body)
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {"weekly.fri"}
    renamed = api.call(
        "manager", "PUT", "/sla/calendars/taiwan_business_hours", _body("taipei_office")
    )
    assert renamed.status_code == 422
    assert set(renamed.get_json()["details"]) == {"name"}
    assert api.ok(api.get("manager", "/sla/calendars/taiwan_business_hours")) == before


@pytest.mark.parametrize(
    "user", ["desk", "l2", "designer", "director", "admin", "reporter", "vendor"]
)
def test_only_the_incident_manager_may_write(api, user):
    assert api.post(user, "/sla/calendars", _body()).status_code == 403
    path = "/sla/calendars/taiwan_business_hours"
    assert api.call(user, "PUT", path, _body("taiwan_business_hours")).status_code == 403
    assert api.call(user, "DELETE", path).status_code == 403
    # Who is answered before the body is read.
    assert api.call(user, "PUT", path, data="{no").status_code == 403
    assert _names(api) == ["24x7", "taiwan_business_hours"]
    assert api.ok(api.get("manager", path))["weekly"]["mon"][0]["start"] == "09:00"


def test_24x7_cannot_be_changed_or_deleted(api):
    before = api.ok(api.get("manager", "/sla/calendars/24x7"))
    body = _body("24x7")
    response = api.call("manager", "PUT", "/sla/calendars/24x7", body)
    assert response.status_code == 403
    assert "built in" in response.get_json()["error"]
    assert api.call("manager", "DELETE", "/sla/calendars/24x7").status_code == 403
    assert api.ok(api.get("manager", "/sla/calendars/24x7")) == before
    created = api.post("manager", "/sla/calendars", body)
    assert created.status_code == 422
    assert set(created.get_json()["details"]) == {"name"}


@pytest.mark.parametrize("name", ["taiwan_business_hours", "taipei_office"])
def test_duplicate_name_is_409(api, name):
    api.ok(api.post("manager", "/sla/calendars", _body()), 201)
    response = api.post("manager", "/sla/calendars", _body(name, timezone="UTC"))
    assert response.status_code == 409
    assert set(response.get_json()["details"]) == {"name"}
    assert api.ok(api.get("manager", f"/sla/calendars/{name}"))["timezone"] == "Asia/Taipei"


def test_delete_of_a_calendar_in_use_is_409_naming_the_priorities(api):
    api.ok(api.post("manager", "/sla/calendars", _body()), 201)
    for priority in (4, 2):
        api.ok(
            api.call("manager", "PUT", f"/sla/policies/{priority}", {"calendar": "taipei_office"})
        )
    assert api.ok(api.get("manager", "/sla/calendars/taipei_office"))["used_by"] == [2, 4]
    assert api.ok(api.get("manager", "/sla/calendars/24x7"))["used_by"] == [1, 3, 5]

    response = api.call("manager", "DELETE", "/sla/calendars/taipei_office")
    assert response.status_code == 409
    body = response.get_json()
    assert "P2, P4" in body["error"]
    assert body["details"] == {"used_by": [2, 4]}
    # Editing a calendar in use is fine: it applies to clocks started from now on.
    api.ok(api.call("manager", "PUT", "/sla/calendars/taipei_office", _body()))

    for priority in (2, 4):
        api.ok(api.call("manager", "PUT", f"/sla/policies/{priority}", {"calendar": "24x7"}))
    assert api.call("manager", "DELETE", "/sla/calendars/taipei_office").status_code == 204


def test_a_stage_that_counts_in_a_calendar_keeps_it_from_deletion(api, ctx):
    """A tier's stage clock may count in a calendar of its own (sla_policies.stages)."""
    api.ok(api.post("manager", "/sla/calendars", _body()), 201)
    with ctx.db.write() as session:
        row = session.get(SlaPolicy, 1)
        assert row is not None
        row.stages = {"level2": {"target_seconds": 3600, "calendar": "taipei_office"}}
    assert api.ok(api.get("manager", "/sla/calendars/taipei_office"))["used_by"] == [1]
    response = api.call("manager", "DELETE", "/sla/calendars/taipei_office")
    assert response.status_code == 409
    assert response.get_json()["details"] == {"used_by": [1]}


# -- service -------------------------------------------------------------------------------


def test_service_rules(ctx):
    desk = Actor(id=0, username="desk", roles=frozenset({"service_desk"}))
    with pytest.raises(Forbidden):
        calendars.create_calendar(ctx, desk, _body())
    with pytest.raises(Forbidden):
        calendars.delete_calendar(ctx, MANAGER, "24x7")
    with pytest.raises(NotFound):
        calendars.get_calendar(ctx, None)
    with pytest.raises(NotFound):
        calendars.replace_calendar(ctx, MANAGER, "nope", _body("nope"))
    with pytest.raises(Invalid):
        calendars.validate_calendar(_body(timezone="Mars/Base"))
    calendars.validate_calendar(_body())
    calendars.create_calendar(ctx, MANAGER, _body())
    with pytest.raises(Conflict):
        calendars.create_calendar(ctx, MANAGER, _body())
    # A new incident's snapshot carries the stored definition as the migration shapes it.
    calendars.create_calendar(ctx, MANAGER, _body("second", use_taiwan_holidays=True))
    with ctx.db.read() as session:
        stored = session.scalars(select(BusinessCalendar.name).order_by(BusinessCalendar.name))
        assert list(stored) == ["24x7", "second", "taipei_office", "taiwan_business_hours"]
        assert take_snapshot(session)["calendars"] == {}  # no policy uses them yet


# -- clocks ----------------------------------------------------------------------------------


def _resolution_due(s: Scenario) -> datetime:
    return datetime.fromisoformat(s.refresh()["sla"]["resolution_due"]).astimezone(TAIPEI)


def test_a_policy_switched_to_a_new_calendar_counts_in_it(api, clock):
    clock.now = datetime(2026, 11, 30, 10, 0, tzinfo=TAIPEI).astimezone(UTC)  # a Monday
    body = _body(
        "short_mornings",
        weekly={day: MORNINGS for day in WEEKDAYS[:5]},
        holidays=["2026-12-01"],
        extra_days_off=[],
        makeup_working_days=[],
    )
    api.ok(api.post("manager", "/sla/calendars", body), 201)
    changed = api.call("manager", "PUT", "/sla/policies/3", {"calendar": "short_mornings"})
    assert changed.status_code == 200, changed.get_json()

    first = Scenario(api)
    first.record(impact="2", urgency="2")  # P3: 24 h of working time
    assert first.incident["priority"] == 3
    assert first.incident["sla"]["policy"]["calendar"] == "short_mornings"
    # Mon 10-12 (2 h), Tue a holiday, Wed-Fri 4 h each (14 h), Mon 7 Dec and Tue 8 Dec
    # (22 h), then Wed 9 Dec 08:00-10:00.
    assert _resolution_due(first) == datetime(2026, 12, 9, 10, 0, tzinfo=TAIPEI)

    # A change of the calendar applies to new clocks only.
    longer = {**body, "weekly": {day: [{"start": "08:00", "end": "18:00"}] for day in WEEKDAYS[:5]}}
    del longer["name"]
    api.ok(api.call("manager", "PUT", "/sla/calendars/short_mornings", longer))
    second = Scenario(api)
    second.record(impact="2", urgency="2")
    # Mon 10-18 (8 h), Tue a holiday, Wed 10 h (18 h), then Thu 08:00-14:00.
    assert _resolution_due(second) == datetime(2026, 12, 3, 14, 0, tzinfo=TAIPEI)
    assert _resolution_due(first) == datetime(2026, 12, 9, 10, 0, tzinfo=TAIPEI)

    # In use: not deleted; once the policy moves on, deleting leaves the incidents' copies.
    assert api.call("manager", "DELETE", "/sla/calendars/short_mornings").status_code == 409
    api.ok(api.call("manager", "PUT", "/sla/policies/3", {"calendar": "24x7"}))
    assert api.call("manager", "DELETE", "/sla/calendars/short_mornings").status_code == 204
    api.ok(api.patch("desk", f"/incidents/{first.id}", {"impact": "2", "urgency": "2"}))
    assert _resolution_due(first) == datetime(2026, 12, 9, 10, 0, tzinfo=TAIPEI)
    assert _resolution_due(second) == datetime(2026, 12, 3, 14, 0, tzinfo=TAIPEI)
    third = Scenario(api)
    third.record(impact="2", urgency="2")
    assert _resolution_due(third) == datetime(2026, 12, 1, 10, 0, tzinfo=TAIPEI)  # 24 x 7


# -- the page ------------------------------------------------------------------------------

FORM = {
    "name": "taipei_office",
    "timezone": "Asia/Taipei",
    "weekly_mon": "08:30-12:00, 13:30-17:30",
    "weekly_tue": "08:30-12:00，13:30-17:30",
    "weekly_wed": "08:30-17:30",
    "weekly_thu": "",
    "weekly_fri": "08:30 - 12:00",
    "weekly_sat": "",
    "weekly_sun": "",
    "holidays": "2026-12-25\r\n\r\n 2027-01-01 \r\n",
    "extra_days_off": "",
    "makeup_working_days": "2026-12-19",
}


def _row(page: str, name: str) -> str:
    match = re.search(rf'<tr id="calendar-{name}">(.*?)</tr>', page, re.S)
    assert match, page[:3000]
    return match.group(1)


def test_policies_page_links_to_the_calendars(browser):
    browser.login("manager")
    assert 'href="/sla/calendars"' in browser.get("/sla/policies").get_data(as_text=True)


def test_manager_creates_a_calendar_on_the_page(browser, api):
    browser.login("manager")
    page = browser.get("/sla/calendars")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "工作行事曆" in text  # zh-Hant by default
    assert "24x7" in _row(text, "24x7") and "taiwan_business_hours" in text
    assert 'href="/sla/calendars/new"' in text

    form_page = browser.get("/sla/calendars/new").get_data(as_text=True)
    assert 'name="weekly_mon" value="09:00-12:00, 13:00-18:00"' in form_page
    assert re.search(r'name="use_taiwan_holidays" value="1"\s+checked', form_page)

    response = browser.post("/sla/calendars/new", FORM)  # Taiwan holidays left unticked
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sla/calendars")
    listed = browser.get("/sla/calendars").get_data(as_text=True)
    assert "08:30-12:00, 13:30-17:30" in _row(listed, "taipei_office")
    assert api.ok(api.get("manager", "/sla/calendars/taipei_office")) == {
        "name": "taipei_office",
        "timezone": "Asia/Taipei",
        "weekly": {
            "mon": SPLIT,
            "tue": SPLIT,
            "wed": [{"start": "08:30", "end": "17:30"}],
            "thu": [],
            "fri": [{"start": "08:30", "end": "12:00"}],
            "sat": [],
            "sun": [],
        },
        "holidays": ["2026-12-25", "2027-01-01"],
        "extra_days_off": [],
        "makeup_working_days": ["2026-12-19"],
        "use_taiwan_holidays": False,
        "builtin": False,
        "used_by": [],
    }


@pytest.mark.parametrize(
    ("form", "field_id"),
    [
        ({"weekly_mon": "09:00-12:00, 11:00-13:00"}, "cal-weekly-mon"),
        ({"weekly_tue": "13:00-17:00, 08:00-12:00"}, "cal-weekly-tue"),
        ({"weekly_wed": "12:00-09:00"}, "cal-weekly-wed"),
        ({"weekly_thu": "9 to 5"}, "cal-weekly-thu"),
        ({"weekly_fri": "09:00-25:00"}, "cal-weekly-fri"),
        ({"timezone": "Asia/Taipie"}, "cal-timezone"),
        ({"timezone": ""}, "cal-timezone"),
        ({"holidays": "2026-12-25\n2026-13-01"}, "cal-holidays"),
        ({"extra_days_off": "next friday"}, "cal-extra-days-off"),
        (
            {"makeup_working_days": "2026-12-19", "extra_days_off": "2026-12-19"},
            "cal-makeup-working-days",
        ),
        ({"name": "Taipei Office"}, "cal-name"),
        ({"name": ""}, "cal-name"),
        ({"name": "24x7"}, "cal-name"),
        ({"name": "taiwan_business_hours"}, "cal-name"),
    ],
)
def test_page_shows_errors_next_to_fields_with_typed_values(browser, api, form, field_id):
    browser.login("manager")
    response = browser.post("/sla/calendars/new", {**FORM, **form})
    assert response.status_code == (409 if form.get("name") == "taiwan_business_hours" else 422)
    text = response.get_data(as_text=True)
    assert f'id="{field_id}-message"' in text
    assert text.count('class="message"') == 1  # only the field at fault
    for name, value in form.items():
        if name in ("holidays", "extra_days_off", "makeup_working_days"):
            assert f">{value}</textarea>" in text
        else:
            assert f'name="{name}" value="{value}"' in text
    for name in (f"weekly_{day}" for day in WEEKDAYS):  # the other days are kept too
        assert f'name="{name}" value="{form.get(name, FORM[name])}"' in text
    assert _names(api) == ["24x7", "taiwan_business_hours"]


def test_page_error_messages_are_translated(browser):
    browser.login("manager")
    text = browser.post(
        "/sla/calendars/new", {**FORM, "weekly_mon": "09:00-12:00, 11:00-13:00"}
    ).get_data(as_text=True)
    message = re.search(r'id="cal-weekly-mon-message">([^<]+)<', text)
    assert message and "時段" in message.group(1)


def test_manager_edits_a_calendar_on_the_page(browser, api):
    browser.login("manager")
    page = browser.get("/sla/calendars/taiwan_business_hours/edit")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'name="weekly_mon" value="09:00-12:00, 13:00-18:00"' in text
    assert 'name="weekly_sat" value=""' in text
    assert 'name="name"' not in text  # the name cannot change

    form = {**FORM, "name": "ignored", "use_taiwan_holidays": "1", "weekly_sat": "09:00-12:00"}
    response = browser.post("/sla/calendars/taiwan_business_hours/edit", form)
    assert response.status_code == 302
    calendar = api.ok(api.get("manager", "/sla/calendars/taiwan_business_hours"))
    assert calendar["weekly"]["sat"] == [{"start": "09:00", "end": "12:00"}]
    assert calendar["weekly"]["thu"] == []
    assert calendar["use_taiwan_holidays"] is True
    assert calendar["holidays"] == ["2026-12-25", "2027-01-01"]

    bad = browser.post(
        "/sla/calendars/taiwan_business_hours/edit", {**form, "weekly_sun": "10:00-09:00"}
    )
    assert bad.status_code == 422
    assert 'id="cal-weekly-sun-message"' in bad.get_data(as_text=True)
    assert api.ok(api.get("manager", "/sla/calendars/taiwan_business_hours")) == calendar

    assert browser.get("/sla/calendars/nope/edit").status_code == 404
    assert browser.post("/sla/calendars/nope/edit", FORM).status_code == 404


def test_manager_deletes_a_calendar_with_csrf(browser, api):
    api.ok(api.post("manager", "/sla/calendars", _body()), 201)
    browser.login("manager")
    text = browser.get("/sla/calendars").get_data(as_text=True)
    assert 'action="/sla/calendars/taipei_office/delete"' in _row(text, "taipei_office")

    assert browser.post("/sla/calendars/taipei_office/delete", with_csrf=False).status_code == 400
    assert "taipei_office" in _names(api)

    api.ok(api.call("manager", "PUT", "/sla/policies/5", {"calendar": "taipei_office"}))
    in_use = browser.post("/sla/calendars/taipei_office/delete")
    assert in_use.status_code == 409
    row = _row(in_use.get_data(as_text=True), "taipei_office")
    assert 'id="delete-taipei_office-message"' in row and "P5" in row
    assert "taipei_office" in _names(api)

    api.ok(api.call("manager", "PUT", "/sla/policies/5", {"calendar": "24x7"}))
    response = browser.post("/sla/calendars/taipei_office/delete")
    assert response.status_code == 302
    assert "taipei_office" not in _names(api)
    assert 'id="calendar-taipei_office"' not in browser.get("/sla/calendars").get_data(as_text=True)
    assert browser.post("/sla/calendars/taipei_office/delete").status_code == 404


def test_the_builtin_calendar_is_read_only_on_the_page(browser, api):
    browser.login("manager")
    text = browser.get("/sla/calendars").get_data(as_text=True)
    assert "/sla/calendars/24x7/" not in _row(text, "24x7")  # neither edit nor delete
    page = browser.get("/sla/calendars/24x7/edit").get_data(as_text=True)
    assert '<form method="post" class="card"' not in page
    assert browser.post("/sla/calendars/24x7/edit", {**FORM, "name": "24x7"}).status_code == 403
    assert browser.post("/sla/calendars/24x7/delete").status_code == 403
    assert _names(api) == ["24x7", "taiwan_business_hours"]


@pytest.mark.parametrize("user", ["desk", "designer", "reporter", "admin"])
def test_page_is_only_for_the_incident_manager(browser, user):
    browser.login(user)
    assert browser.get("/sla/calendars").status_code == 403
    assert browser.get("/sla/calendars/new").status_code == 403
    assert browser.get("/sla/calendars/taiwan_business_hours/edit").status_code == 403
    assert browser.post("/sla/calendars/new", FORM).status_code == 403
    assert browser.post("/sla/calendars/taiwan_business_hours/delete").status_code == 403


def test_signed_out_visitor_is_sent_to_sign_in(browser):
    response = browser.get("/sla/calendars")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


