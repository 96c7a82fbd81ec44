"""The inbox and the task pages in the browser (Flask test client, CSRF on)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from engine.services.tasks import inbox as inbox_cases
from tests.scenario import Scenario

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


# -- helpers -------------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes, and each element's text by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_of: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: (v if v is not None else "") for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag not in ("input", "br", "meta", "link"):
            self._open.append((tag, attributes.get("id")))
            if attributes.get("id"):
                self.text_of[attributes["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text_of[element_id] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, **attrs: str) -> dict[str, str]:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


def page(response: Any) -> str:
    return str(response.get_data(as_text=True))


def sign_in(browser: Any, username: str) -> Any:
    """Sign in and switch to English, so that the assertions do not depend on a catalog."""
    browser.login(username)
    response = browser.post("/language", {"locale": "en", "next": "/tasks"}, csrf_from="/login")
    assert response.status_code == 302
    return browser


def task_path(scenario: Scenario, name: str) -> str:
    return f"/tasks/{scenario.task_id(name)}"


def numbers_in_order(html: str, numbers: list[str]) -> list[str]:
    positions = sorted((html.index(n), n) for n in numbers if n in html)
    return [n for _, n in positions]


def report(
    api: Any, title: str = "Printer jammed", description: str = "desc", contact: str = "ext. 1"
) -> Scenario:
    """A Scenario whose incident has this title, description and contact."""
    scenario = Scenario.__new__(Scenario)
    scenario.api = api
    body = {"title": title, "description": description, "contact": contact, "channel": "web"}
    scenario.incident = api.ok(api.post("reporter", "/incidents", body), 201)
    scenario.id = scenario.incident["id"]
    return scenario


# -- the inbox -----------------------------------------------------------------------------


def test_inbox_lists_exactly_the_users_lanes(api: Any, browser: Any) -> None:
    fresh = report(api, "Screen flickers")
    at_level2 = report(api, "VPN drops")
    at_level2.record(impact="3", urgency="3")
    at_level2.desk_passes_on()

    sign_in(browser, "desk")
    html = page(browser.get("/tasks"))
    assert fresh.incident["number"] in html
    assert "Screen flickers" in html
    assert "Record and classify incident" in html
    assert f'href="/incidents/{fresh.id}"' in html
    assert f'href="/tasks/{fresh.task_id("record_incident")}"' in html
    assert at_level2.incident["number"] not in html
    assert "VPN drops" not in html

    level2 = sign_in(type(browser)(browser.client.application), "l2")
    html = page(level2.get("/tasks"))
    assert at_level2.incident["number"] in html and "VPN drops" in html
    assert 'class="badge p5"' in html
    assert "Level-2 engineer" in html  # the lane, translated by role_label
    assert fresh.incident["number"] not in html


def test_inbox_is_only_for_users_with_a_lane(browser: Any, app: Any) -> None:
    assert browser.get("/tasks").status_code == 302  # not signed in: to the sign-in page
    for username in ("reporter", "designer", "admin"):
        client = type(browser)(app)
        client.login(username)
        assert client.get("/tasks").status_code == 403, username
    vendor = type(browser)(app)
    vendor.login("vendor")
    assert vendor.get("/tasks").status_code == 200


def test_inbox_filters_sorts_and_pages(
    api: Any, browser: Any, clock: Any, monkeypatch: Any
) -> None:
    p1 = report(api, "Everything down")
    p1.record(impact="1", urgency="1")
    clock.advance(minutes=5)
    p3 = report(api, "Slow laptop")
    p3.record(impact="2", urgency="2")
    clock.advance(minutes=5)
    p5 = report(api, "Font looks odd")
    p5.record(impact="3", urgency="3")
    numbers = [s.incident["number"] for s in (p1, p3, p5)]
    sign_in(browser, "desk")

    html = page(browser.get("/tasks"))
    assert "3 tasks" in html
    assert 'class="badge p1"' in html and 'class="badge major"' in html

    html = page(browser.get("/tasks?priority=1"))
    assert numbers_in_order(html, numbers) == [numbers[0]]
    html = page(browser.get("/tasks?priority=3"))
    assert numbers_in_order(html, numbers) == [numbers[1]]

    html = page(browser.get("/tasks?sort=priority&dir=asc"))
    assert numbers_in_order(html, numbers) == numbers
    html = page(browser.get("/tasks?sort=priority&dir=desc"))
    assert numbers_in_order(html, numbers) == list(reversed(numbers))
    assert 'aria-sort="descending"' in html
    html = page(browser.get("/tasks?sort=number&dir=desc"))
    assert numbers_in_order(html, numbers) == list(reversed(numbers))
    html = page(browser.get("/tasks?sort=due&dir=asc"))  # P1 is due first, P5 last
    assert numbers_in_order(html, numbers) == numbers
    html = page(browser.get("/tasks?sort=age&dir=desc"))  # oldest first
    assert numbers_in_order(html, numbers) == numbers
    assert "10 min" in html  # the age of the oldest task
    html = page(browser.get("/tasks?sort=age&dir=asc"))
    assert numbers_in_order(html, numbers) == list(reversed(numbers))

    html = page(browser.get("/tasks?lane=service_desk"))
    assert numbers_in_order(html, numbers) == numbers

    monkeypatch.setattr(inbox_cases, "PAGE_SIZE", 2)
    first = page(browser.get("/tasks?sort=number&dir=asc"))
    assert numbers_in_order(first, numbers) == numbers[:2]
    assert "3 tasks" in first and "Page 1 of 2" in first
    assert "page=2" in first  # the link to the next page keeps the sort
    second = page(browser.get("/tasks?sort=number&dir=asc&page=2"))
    assert numbers_in_order(second, numbers) == numbers[2:]
    assert "Page 2 of 2" in second


def test_inbox_my_tasks_toggle(api: Any, browser: Any) -> None:
    mine = report(api, "Mine to do")
    other = report(api, "Someone else's")
    sign_in(browser, "desk")
    response = browser.post(
        f"/tasks/{mine.task_id('record_incident')}/claim", {"next": "/tasks"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/tasks"
    html = page(browser.get("/tasks?view=mine"))
    assert mine.incident["number"] in html
    assert other.incident["number"] not in html
    html = page(browser.get("/tasks"))
    assert mine.incident["number"] in html and other.incident["number"] in html


@pytest.mark.parametrize(
    "query, field",
    [
        ("priority=9", "filter-priority-message"),
        ("lane=level2", "filter-lane-message"),
        ("lane=nonsense", "filter-lane-message"),
    ],
)
def test_inbox_rejects_bad_filters_next_to_the_filter(browser: Any, query: str, field: str) -> None:
    sign_in(browser, "desk")
    response = browser.get(f"/tasks?{query}")
    assert response.status_code == 422
    parsed = Elements(page(response))
    assert parsed.text_of[field].strip()


@pytest.mark.parametrize("query", ["sort=title", "dir=up", "page=0", "page=x", "view=all"])
def test_inbox_rejects_bad_sorting_and_paging(browser: Any, query: str) -> None:
    sign_in(browser, "desk")
    response = browser.get(f"/tasks?{query}")
    assert response.status_code == 422
    assert "not valid" in page(response)


def test_overdue_tasks_are_marked(api: Any, browser: Any, clock: Any) -> None:
    late = report(api, "Old and forgotten")
    late.record(impact="3", urgency="3")  # P5: resolution within 168 h
    path = task_path(late, "initial_handling")  # (API tokens expire when the clock moves)
    sign_in(browser, "desk")
    html = page(browser.get("/tasks"))
    assert 'class="overdue"' not in html
    clock.advance(hours=170)
    html = page(browser.get("/tasks"))
    assert 'class="overdue"' in html and "overdue" in html
    html = page(browser.get(path))
    assert 'class="overdue"' in html


def test_vendor_works_from_the_inbox(api: Any, browser: Any) -> None:
    scenario = report(api, "Firmware bug")
    scenario.record()
    scenario.desk_passes_on()
    scenario.level2("escalate_vendor")
    sign_in(browser, "vendor")
    html = page(browser.get("/tasks"))
    assert "Firmware bug" in html and "Vendor investigation and solution" in html
    path = task_path(scenario, "vendor_investigation")
    parsed = Elements(page(browser.get(path)))
    assert "required" in parsed.one("textarea", name="solution")
    response = browser.post(path, {"solution": "Patched the firmware"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/incidents/{scenario.id}"
    assert scenario.open_tasks() == ["level2_resolve"]


# -- claim, release, assign ------------------------------------------------------------------


def test_claim_release_and_assign_in_the_browser(api: Any, browser: Any) -> None:
    scenario = report(api)
    task_id = scenario.task_id("record_incident")
    sign_in(browser, "desk")

    response = browser.post(f"/tasks/{task_id}/claim")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tasks/{task_id}"
    assert api.ok(api.get("desk", f"/tasks/{task_id}"))["claimed_by"] == "desk"
    html = page(browser.get(f"/tasks/{task_id}"))
    assert f'action="/tasks/{task_id}/release"' in html

    response = browser.post(f"/tasks/{task_id}/release")
    assert response.status_code == 302
    assert api.ok(api.get("desk", f"/tasks/{task_id}"))["claimed_by"] is None

    html = page(browser.get(f"/tasks/{task_id}"))
    parsed = Elements(html)
    assert parsed.find("option", value="desk2")
    response = browser.post(f"/tasks/{task_id}/assign", {"username": "desk2"})
    assert response.status_code == 302
    assert api.ok(api.get("desk", f"/tasks/{task_id}"))["claimed_by"] == "desk2"
    # Assigned to a colleague: the agent may no longer complete it.
    html = page(browser.get(f"/tasks/{task_id}"))
    assert 'id="claimed-by-other"' in html
    assert "Complete step" not in html

    response = browser.post(f"/tasks/{task_id}/assign", {"username": "l2"})
    assert response.status_code == 409  # claimed by desk2 now, so desk may not reassign it


def test_assign_to_someone_outside_the_lane_is_422(api: Any, browser: Any) -> None:
    scenario = report(api)
    task_id = scenario.task_id("record_incident")
    sign_in(browser, "desk")
    response = browser.post(f"/tasks/{task_id}/assign", {"username": "l2"})
    assert response.status_code == 422
    assert api.ok(api.get("desk", f"/tasks/{task_id}"))["claimed_by"] is None


def test_claim_is_enforced_and_typed_values_survive_a_conflict(api: Any, app: Any) -> None:
    scenario = report(api)
    scenario.record()
    task_id = scenario.task_id("initial_handling")
    from tests.conftest import Browser

    desk, desk2 = sign_in(Browser(app), "desk"), sign_in(Browser(app), "desk2")
    assert desk2.get(f"/tasks/{task_id}").status_code == 200  # desk2 opens the form …
    assert desk.post(f"/tasks/{task_id}/claim").status_code == 302  # … desk claims it

    typed = "Cleared the print queue & restarted"
    response = desk2.post(
        f"/tasks/{task_id}", {"resolved_at_desk": "true", "resolution": typed}
    )
    assert response.status_code == 409
    html = page(response)
    assert 'id="conflict"' in html
    assert "desk has claimed this step" in html
    parsed = Elements(html)
    assert parsed.text_of["field-resolution"] == typed
    assert "checked" in parsed.one("input", id="field-resolved_at_desk-yes")
    assert scenario.task_id("initial_handling") == task_id  # still open

    # The claimant completes; a second completion gets a 409 with the values kept.
    response = desk.post(f"/tasks/{task_id}", {"resolved_at_desk": "true", "resolution": "done"})
    assert response.status_code == 302
    response = desk2.post(f"/tasks/{task_id}", {"resolved_at_desk": "true", "resolution": typed})
    assert response.status_code == 409
    parsed = Elements(page(response))
    assert parsed.text_of["field-resolution"] == typed
    assert "completed or cancelled" in page(response)
    assert not parsed.find("button", type="submit", class_="primary")


# -- the task page -------------------------------------------------------------------------


def test_record_incident_form(api: Any, browser: Any) -> None:
    scenario = report(api)
    sign_in(browser, "desk")
    response = browser.get(task_path(scenario, "record_incident"))
    assert response.status_code == 200
    html = page(response)
    parsed = Elements(html)
    # category: 5 options → a select, with an empty choice, required
    select = parsed.one("select", name="category")
    assert "required" in select and select["id"] == "field-category"
    assert parsed.one("label", for_="field-category")["class"] == "required"
    section = html.split('name="category"')[1].split("</select>")[0]
    options = re.findall(r'<option value="([^"]*)"', section)
    assert options == ["", "hardware", "software", "network", "access", "other"]
    # impact and urgency: 3 options → radio buttons, each with its label
    for name in ("impact", "urgency"):
        radios = parsed.find("input", type="radio", name=name)
        assert [r["value"] for r in radios] == ["1", "2", "3"]
        for radio in radios:
            assert "required" in radio
            assert parsed.find("label", for_=radio["id"])
    # the right column: instructions, the incident and its history
    assert 'class="instructions"' in html and "1.2 Record the incident" in html
    assert scenario.incident["number"] in html
    assert "ext. 1" in html  # the reporter's contact
    history = parsed.text_of["history"]
    assert "Reported" in history and "reporter" in history
    assert 'name="csrf_token"' in html


def test_initial_handling_form(api: Any, browser: Any) -> None:
    scenario = report(api)
    scenario.record()
    sign_in(browser, "desk")
    html = page(browser.get(task_path(scenario, "initial_handling")))
    parsed = Elements(html)
    # A required boolean: yes / no, neither chosen (tests/test_ux_forms.py has the rest).
    choices = parsed.find("input", name="resolved_at_desk")
    assert [(c["type"], c["value"]) for c in choices] == [("radio", "true"), ("radio", "false")]
    assert not any("checked" in c for c in choices)
    assert parsed.find("label", for_="field-resolved_at_desk-yes")
    resolution = parsed.one("textarea", name="resolution")
    assert resolution["id"] == "field-resolution"
    assert "required" not in resolution  # only required when resolved at the desk
    assert resolution["maxlength"] == "4000"
    assert "field-resolution-hint" in resolution["aria-describedby"]
    for name in ("create_problem", "create_knowledge_article"):
        assert parsed.one("input", name=name)["type"] == "checkbox"
    # The history names the completed classification step.
    assert "Step completed" in html and "Record and classify incident" in html


def test_level2_investigation_form(api: Any, browser: Any) -> None:
    scenario = report(api)
    scenario.record()
    scenario.desk_passes_on()
    sign_in(browser, "l2")
    html = page(browser.get(task_path(scenario, "level2_investigation")))
    parsed = Elements(html)
    assert "required" in parsed.one("select", name="level2_outcome")
    section = html.split('name="level2_outcome"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', section) == [
        "", "solved", "reassign", "escalate_level3", "escalate_vendor"
    ]
    assert "Escalate to level 3" in section
    assert parsed.one("textarea", name="reassign_reason")
    reassign_to = parsed.one("input", name="reassign_to")
    assert reassign_to["type"] == "text" and "required" not in reassign_to
    assert "class" not in parsed.one("label", for_="field-reassign_to")  # optional: no marker
    assert parsed.one("input", name="change_required")["type"] == "checkbox"
    assert parsed.one("input", name="service_request_required")["type"] == "checkbox"


def test_record_feedback_and_resolve_forms(api: Any, browser: Any) -> None:
    scenario = report(api)
    scenario.record()
    scenario.desk_resolves()
    scenario.confirm()
    sign_in(browser, "desk")
    html = page(browser.get(task_path(scenario, "record_feedback")))
    parsed = Elements(html)
    assert "required" in parsed.one("select", name="satisfaction")
    section = html.split('name="satisfaction"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', section) == ["", "1", "2", "3", "4", "5"]
    feedback = parsed.find("input", name="feedback") or parsed.find("textarea", name="feedback")
    assert feedback and "required" not in feedback[0]

    # level2_resolve: an enum with a default (3 options → radios, "fixed" preselected)
    other = report(api, "Another")
    other.record()
    other.desk_passes_on()
    other.level2("solved")
    level2 = sign_in(type(browser)(browser.client.application), "l2")
    parsed = Elements(page(level2.get(task_path(other, "level2_resolve"))))
    radios = {r["value"]: r for r in parsed.find("input", type="radio", name="resolution_code")}
    assert set(radios) == {"fixed", "workaround", "no_fault_found"}
    assert "checked" in radios["fixed"] and "checked" not in radios["workaround"]
    assert "required" in parsed.one("textarea", name="resolution")


def test_completing_through_the_form_moves_the_incident_on(api: Any, browser: Any) -> None:
    scenario = report(api)
    sign_in(browser, "desk")
    response = browser.post(
        task_path(scenario, "record_incident"),
        {"category": "software", "impact": "2", "urgency": "2"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/tasks"  # desk has the next step of it
    incident = scenario.refresh()
    assert incident["priority"] == 3 and incident["category"] == "software"
    assert scenario.open_tasks() == ["initial_handling"]
    assert "Step completed for" in page(browser.get("/tasks"))

    # Not resolved at the desk ("no" of the yes / no pair).
    response = browser.post(
        task_path(scenario, "initial_handling"), {"resolved_at_desk": "false", "resolution": ""}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/incidents/{scenario.id}"  # nothing left for desk
    assert scenario.open_tasks() == ["level2_investigation"]


def test_invalid_values_come_back_with_messages_next_to_the_fields(
    api: Any, browser: Any
) -> None:
    scenario = report(api)
    sign_in(browser, "desk")
    path = task_path(scenario, "record_incident")
    response = browser.post(path, {"category": "network", "impact": "2"})
    assert response.status_code == 422
    html = page(response)
    parsed = Elements(html)
    assert parsed.text_of["field-urgency-message"] == "This field is required."
    assert "field-urgency-message" in parsed.one("fieldset", id="field-urgency")["aria-describedby"]
    assert 'class="field invalid"' in html
    assert 'id="error-summary"' in html
    # What was typed is kept.
    assert "selected" in parsed.one("option", value="network")
    radios = parsed.find("input", type="radio", name="impact")
    checked = [r["value"] for r in radios if "checked" in r]
    assert checked == ["2"]
    assert scenario.open_tasks() == ["record_incident"]

    scenario.record()
    path = task_path(scenario, "initial_handling")
    response = browser.post(
        path, {"resolved_at_desk": "true", "resolution": "", "create_problem": "true"}
    )
    assert response.status_code == 422
    parsed = Elements(page(response))
    assert parsed.text_of["field-resolution-message"] == "This field is required."
    described = parsed.one("textarea", name="resolution")["aria-describedby"]
    assert "field-resolution-message" in described
    assert "checked" in parsed.one("input", id="field-resolved_at_desk-yes")
    assert "checked" in parsed.one("input", name="create_problem")
    assert "checked" not in parsed.one("input", name="create_knowledge_article")

    response = browser.post(path, {"resolved_at_desk": "true", "resolution": "x" * 4001})
    assert response.status_code == 422
    parsed = Elements(page(response))
    assert parsed.text_of["field-resolution-message"] == "Enter at most 4000 characters."
    assert parsed.text_of["field-resolution"] == "x" * 4001


def test_unknown_field_is_422_and_listed(api: Any, browser: Any) -> None:
    scenario = report(api)
    sign_in(browser, "desk")
    response = browser.post(
        task_path(scenario, "record_incident"),
        {"category": "network", "impact": "2", "urgency": "2", "priority": "1"},
    )
    assert response.status_code == 422
    assert "priority: This is not a field of this form." in page(response)


def test_post_without_csrf_token_is_400_and_changes_nothing(api: Any, browser: Any) -> None:
    scenario = report(api)
    task_id = scenario.task_id("record_incident")
    sign_in(browser, "desk")
    values = {"category": "software", "impact": "2", "urgency": "2"}
    assert browser.post(f"/tasks/{task_id}", values, with_csrf=False).status_code == 400
    assert browser.post(f"/tasks/{task_id}/claim", with_csrf=False).status_code == 400
    bad = dict(values, csrf_token="forged")
    assert browser.post(f"/tasks/{task_id}", bad, with_csrf=False).status_code == 400
    assert scenario.open_tasks() == ["record_incident"]
    assert api.ok(api.get("desk", f"/tasks/{task_id}"))["claimed_by"] is None


def test_user_text_is_escaped(api: Any, browser: Any) -> None:
    scenario = report(api, SCRIPT, description=SCRIPT, contact=SCRIPT)
    sign_in(browser, "desk")
    for path in ("/tasks", task_path(scenario, "record_incident")):
        html = page(browser.get(path))
        assert ESCAPED_SCRIPT in html, path
        assert SCRIPT not in html, path
    # Typed values that come back after an error are escaped too.
    scenario.record()
    response = browser.post(
        task_path(scenario, "initial_handling"),
        {"resolved_at_desk": "true", "resolution": SCRIPT + "x" * 4000},
    )
    assert response.status_code == 422
    assert SCRIPT not in page(response) and ESCAPED_SCRIPT in page(response)


def test_task_of_another_lane_is_403_and_unknown_task_is_404(api: Any, browser: Any) -> None:
    scenario = report(api)
    task_id = scenario.task_id("record_incident")
    sign_in(browser, "l2")
    assert browser.get(f"/tasks/{task_id}").status_code == 403
    response = browser.post(f"/tasks/{task_id}", {"category": "software"})
    assert response.status_code == 403
    assert browser.post(f"/tasks/{task_id}/claim").status_code == 403
    assert browser.get("/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert browser.get("/tasks/not-a-task").status_code == 404
    assert browser.post("/tasks/not-a-task/claim").status_code == 404
    assert scenario.open_tasks() == ["record_incident"]


def test_completed_task_page_says_so_plainly(api: Any, browser: Any) -> None:
    scenario = report(api)
    task_id = scenario.task_id("record_incident")
    scenario.record()
    sign_in(browser, "desk")
    response = browser.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    html = page(response)
    assert "already been completed" in html
    assert 'id="task-form"' not in html


def test_labels_fall_back_to_the_bpmn_and_use_the_catalog(app: Any, monkeypatch: Any) -> None:
    from web.ui import tasks as ui

    # English has no catalog entries for these keys: the BPMN labels show.
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert ui.task_label("record_incident", "Record and classify incident") == (
            "Record and classify incident"
        )
        assert ui.field_label("record_incident", "impact", "Impact") == "Impact"
        assert ui.option_label("record_incident", "impact", "1", "High") == "High"
        catalog = {"task:record_incident": "登錄", "option:record_incident:impact:1": "高"}
        monkeypatch.setattr(ui, "_", lambda key, **kw: catalog.get(key, key))
        assert ui.task_label("record_incident", "Record and classify incident") == "登錄"
        assert ui.option_label("record_incident", "impact", "1", "High") == "高"
        assert ui.field_label("record_incident", "impact", "Impact") == "Impact"
