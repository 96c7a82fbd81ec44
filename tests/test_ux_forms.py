"""A required boolean is a decision: two unselected choices, yes / no, one of which must be
picked (issue 10, item 8). An unticked "recovered" box used to reopen the incident silently.
Optional booleans stay checkboxes; the field ids, types and API values do not change."""

from __future__ import annotations

from typing import Any

import pytest

from engine.domain.forms import FieldSpec, FormSpec, FormValidationError, validate_submission
from tests.scenario import Scenario
from tests.test_ui_tasks import Elements, page, sign_in, task_path

RECOVERED = FieldSpec("recovered", "Recovered", "boolean", required=True)
OPTIONAL = FieldSpec("create_problem", "Create a problem", "boolean")


def errors_of(form: FormSpec, submitted: dict[str, Any], **kw: Any) -> dict[str, str]:
    with pytest.raises(FormValidationError) as caught:
        validate_submission(form, submitted, **kw)
    return caught.value.errors


# -- the rule, in the domain ------------------------------------------------------------------


@pytest.mark.parametrize("submitted", [{}, {"recovered": ""}])
def test_a_required_boolean_not_chosen_in_a_browser_is_missing(submitted: dict[str, str]):
    form = FormSpec((RECOVERED, OPTIONAL))
    assert errors_of(form, submitted, from_text=True) == {"recovered": "is required"}


def test_a_required_boolean_with_a_default_still_needs_a_choice():
    form = FormSpec((FieldSpec("ok", "OK", "boolean", required=True, default="true"),))
    assert errors_of(form, {}, from_text=True) == {"ok": "is required"}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("false", False)])
def test_either_choice_is_an_answer(text: str, value: bool):
    form = FormSpec((RECOVERED, OPTIONAL))
    assert validate_submission(form, {"recovered": text}, from_text=True) == {
        "recovered": value,
        "create_problem": False,  # an optional box left unticked is still "no"
    }


def test_the_api_rule_is_unchanged():
    form = FormSpec((RECOVERED,))
    assert errors_of(form, {}) == {"recovered": "is required"}
    assert validate_submission(form, {"recovered": False}) == {"recovered": False}
    assert errors_of(form, {"recovered": "false"}) == {"recovered": "must be true or false"}


# -- the pages --------------------------------------------------------------------------------


def resolved_at_desk(api: Any) -> Scenario:
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_resolves()
    assert scenario.open_tasks() == ["confirm_recovery"]
    return scenario


def yes_no(parsed: Elements, field_id: str) -> list[dict[str, str]]:
    return parsed.find("input", name=field_id)


def test_confirm_recovery_shows_two_unselected_choices(api: Any, browser: Any) -> None:
    scenario = resolved_at_desk(api)
    sign_in(browser, "desk")
    html = page(browser.get(task_path(scenario, "confirm_recovery")))
    parsed = Elements(html)
    choices = yes_no(parsed, "recovered")
    assert [(c["type"], c["value"], c["id"]) for c in choices] == [
        ("radio", "true", "field-recovered-yes"),
        ("radio", "false", "field-recovered-no"),
    ]
    assert not any("checked" in c for c in choices)
    assert all("required" in c for c in choices)
    assert parsed.one("fieldset", id="field-recovered")["class"] == "radios yes-no"
    assert parsed.one("legend", class_="required")
    assert parsed.text_of["field-recovered"].split() == [
        "The", "user", "confirms", "that", "the", "service", "has", "recovered", "Yes", "No",
    ]
    for choice in choices:
        assert parsed.find("label", for_=choice["id"])


def test_sending_no_choice_names_the_field_and_changes_nothing(api: Any, browser: Any) -> None:
    scenario = resolved_at_desk(api)
    sign_in(browser, "desk")
    path = task_path(scenario, "confirm_recovery")
    response = browser.post(path, {}, csrf_from=path)
    assert response.status_code == 422
    parsed = Elements(page(response))
    assert parsed.text_of["field-recovered-message"] == "This field is required."
    assert "field-recovered-message" in parsed.one("fieldset", id="field-recovered")[
        "aria-describedby"
    ]
    assert scenario.open_tasks() == ["confirm_recovery"]
    assert "reopened" not in scenario.event_types()
    assert scenario.incident["status"] == "resolved"


def test_a_chosen_answer_survives_an_error_page(api: Any, browser: Any) -> None:
    scenario = Scenario(api)
    scenario.record()
    sign_in(browser, "desk")
    path = task_path(scenario, "initial_handling")
    # Yes, resolved at the desk, but without the resolution it then needs.
    response = browser.post(path, {"resolved_at_desk": "true", "resolution": ""}, csrf_from=path)
    assert response.status_code == 422
    parsed = Elements(page(response))
    assert "checked" in parsed.one("input", id="field-resolved_at_desk-yes")
    assert "checked" not in parsed.one("input", id="field-resolved_at_desk-no")
    assert parsed.text_of["field-resolution-message"] == "This field is required."


def test_choosing_no_reopens_as_before(api: Any, browser: Any) -> None:
    scenario = resolved_at_desk(api)
    sign_in(browser, "desk")
    path = task_path(scenario, "confirm_recovery")
    response = browser.post(path, {"recovered": "false"}, csrf_from=path)
    assert response.status_code == 302
    assert "reopened" in scenario.event_types()
    assert scenario.open_tasks() == ["level2_investigation"]
    completed = [e for e in scenario.incident["events"] if e["type"] == "task_completed"]
    assert completed[-1]["values"] == {"recovered": False}  # the contract's value


def test_the_managers_acknowledgement_is_a_decision_too(api: Any, browser: Any) -> None:
    scenario = Scenario(api)
    scenario.record(impact="1", urgency="1")
    assert "manager_review" in scenario.open_tasks()
    sign_in(browser, "manager")
    path = task_path(scenario, "manager_review")
    parsed = Elements(page(browser.get(path)))
    assert [c["type"] for c in yes_no(parsed, "manager_acknowledged")] == ["radio", "radio"]
    response = browser.post(path, {}, csrf_from=path)
    assert response.status_code == 422
    assert Elements(page(response)).text_of["field-manager_acknowledged-message"] == (
        "This field is required."
    )
    assert "manager_review" in scenario.open_tasks()


def test_optional_booleans_stay_checkboxes(api: Any, browser: Any) -> None:
    scenario = Scenario(api)
    scenario.record()
    sign_in(browser, "desk")
    parsed = Elements(page(browser.get(task_path(scenario, "initial_handling"))))
    for name in ("create_problem", "create_knowledge_article"):
        box = parsed.one("input", name=name)
        assert box["type"] == "checkbox" and "required" not in box and "checked" not in box


def test_the_api_form_is_unchanged(api: Any) -> None:
    scenario = resolved_at_desk(api)
    task = api.ok(api.get("desk", f"/tasks/{scenario.task_id('confirm_recovery')}"))
    field = next(f for f in task["form"]["fields"] if f["id"] == "recovered")
    assert (field["type"], field["required"]) == ("boolean", True)
    missing = api.post("desk", f"/tasks/{task['id']}/complete", {})
    assert missing.status_code == 422
    assert "recovered" in missing.get_json()["details"]
    api.ok(api.post("desk", f"/tasks/{task['id']}/complete", {"recovered": True}))
    assert scenario.open_tasks() == ["record_feedback"]
