"""Stage targets in SLA policies: the API, the page, validation and the 0006 migration."""

from __future__ import annotations

import re

import pytest
from alembic import command
from sqlalchemy import select

from engine.domain.sla import DEFAULT_STAGE_TARGETS
from engine.persistence.migrate import alembic_config
from engine.persistence.models import Incident, SlaPolicy, SlaPolicyVersion
from tests.scenario import Scenario

HOUR = 3600


def put(api, priority, body, user="manager"):
    return api.call(user, "PUT", f"/sla/policies/{priority}", body)


def test_defaults_give_every_priority_a_target_per_tier(api):
    for policy in api.ok(api.get("desk", "/sla/policies")):
        assert set(policy["stages"]) == {"service_desk", "level2", "level3", "vendor"}
        assert {s: t["target_seconds"] for s, t in policy["stages"].items()} == dict(
            DEFAULT_STAGE_TARGETS[policy["priority"]]
        )


def test_change_one_stage_keeps_the_others_and_makes_a_version(api, ctx):
    body = api.ok(put(api, 2, {"stages": {"vendor": {"target_seconds": 2 * HOUR}}}))
    assert body["version"] == 2
    assert body["stages"]["vendor"] == {"target_seconds": 2 * HOUR, "calendar": None}
    assert body["stages"]["level2"]["target_seconds"] == DEFAULT_STAGE_TARGETS[2]["level2"]
    body = api.ok(put(api, 2, {"stages": {"vendor": {"calendar": "taiwan_business_hours"}}}))
    assert body["stages"]["vendor"] == {
        "target_seconds": 2 * HOUR,
        "calendar": "taiwan_business_hours",
    }
    body = api.ok(put(api, 2, {"stages": {"level3": None}}))  # no target: no clock
    assert body["stages"]["level3"] is None and body["version"] == 4
    unchanged = api.ok(put(api, 2, {"stages": {"level3": None}}))
    assert unchanged["version"] == 4  # nothing changed, no version
    with ctx.db.read() as session:
        history = session.scalars(
            select(SlaPolicyVersion)
            .where(SlaPolicyVersion.priority == 2)
            .order_by(SlaPolicyVersion.version)
        ).all()
        assert [("level3" in v.stages) for v in history] == [True, True, True, False]


def test_a_stage_without_a_target_runs_no_clock(api, clock):
    api.ok(put(api, 3, {"stages": {"level2": None}}))
    s = Scenario(api)
    s.record(impact="2", urgency="2")
    s.desk_passes_on()
    clocks = [c["clock"] for c in s.refresh()["sla"]["clocks"]]
    assert clocks == ["response", "resolution", "service_desk", "level3", "vendor"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stages": []}, "stages"),
        ({"stages": {"level4": {"target_seconds": 60}}}, "stages.level4"),
        ({"stages": {"level2": {}}}, "stages.level2"),
        ({"stages": {"level2": 60}}, "stages.level2"),
        ({"stages": {"level2": {"target_seconds": 0}}}, "stages.level2.target_seconds"),
        ({"stages": {"level2": {"target_seconds": -5}}}, "stages.level2.target_seconds"),
        ({"stages": {"level2": {"target_seconds": True}}}, "stages.level2.target_seconds"),
        ({"stages": {"level2": {"target_seconds": "1h"}}}, "stages.level2.target_seconds"),
        ({"stages": {"level2": {"minutes": 5}}}, "stages.level2.minutes"),
        ({"stages": {"level2": {"calendar": "mars_time"}}}, "stages.level2.calendar"),
        ({"stages": {"level2": {"calendar": 7}}}, "stages.level2.calendar"),
    ],
)
def test_bad_stage_targets_are_422_naming_the_field(api, body, field):
    response = put(api, 1, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]
    assert api.ok(api.get("manager", "/sla/policies"))[0]["version"] == 1  # nothing changed


def test_a_new_stage_needs_a_target(api):
    api.ok(put(api, 1, {"stages": {"vendor": None}}))
    response = put(api, 1, {"stages": {"vendor": {"calendar": "24x7"}}})
    assert response.status_code == 422
    assert "stages.vendor.target_seconds" in response.get_json()["details"]


@pytest.mark.parametrize("user", ["desk", "l2", "director", "designer"])
def test_only_the_incident_manager_changes_stages(api, user):
    assert put(api, 1, {"stages": {"level2": None}}, user=user).status_code == 403


def _row(text: str, priority: int) -> str:
    match = re.search(rf'<tr id="policy-{priority}">(.*?)</tr>', text, re.S)
    assert match is not None
    return match.group(1)


def _form(priority_values: dict[str, str]) -> dict[str, str]:
    form = {
        "response_value": "15",
        "response_unit": "minutes",
        "resolution_value": "4",
        "resolution_unit": "hours",
        "calendar": "24x7",
    }
    for stage in ("service_desk", "level2", "level3", "vendor"):
        form[f"{stage}_value"] = priority_values.get(stage, "1")
        form[f"{stage}_unit"] = "hours"
        form[f"{stage}_calendar"] = ""
    return form


def test_page_edits_stage_targets(browser, api):
    browser.login("manager")
    form = _form({"level2": "3", "vendor": ""})
    form["level3_calendar"] = "taiwan_business_hours"
    response = browser.post("/sla/policies/1", form)
    assert response.status_code == 302
    stages = api.ok(api.get("manager", "/sla/policies"))[0]["stages"]
    assert stages["level2"] == {"target_seconds": 3 * HOUR, "calendar": None}
    assert stages["level3"] == {"target_seconds": HOUR, "calendar": "taiwan_business_hours"}
    assert stages["vendor"] is None
    row = _row(browser.get("/sla/policies").get_data(as_text=True), 1)
    assert f'data-stage="level2" data-seconds="{3 * HOUR}"' in row


def test_page_keeps_typed_stage_values_on_error(browser, api):
    browser.login("manager")
    form = _form({"level2": "abc"})
    response = browser.post("/sla/policies/1", form)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'name="level2_value" type="number" min="1" step="1"' in text
    assert 'value="abc" aria-invalid="true"' in text
    assert api.ok(api.get("manager", "/sla/policies"))[0]["version"] == 1


def test_migration_0006_adds_stage_targets_and_backfills_open_incidents(api, ctx):
    s = Scenario(api)
    s.record()
    s.desk_passes_on()  # with level 2
    config = alembic_config()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with ctx.db.read() as session:
        incident = session.get(Incident, s.id)
        assert incident is not None and incident.stage == "level2"
        policy = session.get(SlaPolicy, 4)
        assert policy is not None
        assert policy.stages["vendor"] == {
            "target_seconds": DEFAULT_STAGE_TARGETS[4]["vendor"],
            "calendar": None,
        }
        version = session.scalar(
            select(SlaPolicyVersion).where(
                SlaPolicyVersion.priority == 4, SlaPolicyVersion.version == policy.version
            )
        )
        assert version is not None and version.stages == policy.stages
