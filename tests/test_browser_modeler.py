"""The modeler in a real browser: edit, save, check, fix, deploy, and use the change."""

from __future__ import annotations

import os
import re
from typing import Any

from playwright.sync_api import Page, expect

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.test_browser_e2e import DOCS, Desk, chromium, server  # noqa: F401  (fixtures)

PANEL = "#properties"
CONDITION = f"{PANEL} #bio-properties-panel-conditionExpression"


def open_new_draft(page: Page, base: str) -> None:
    page.goto(f"{base}/process/")
    page.fill("#new-name", "Ask for the caller's location")
    page.click("#new-draft")
    expect(page).to_have_url(re.compile(r"/process/drafts/\d+$"))
    expect(page.locator("#modeler[data-ready='true']")).to_have_count(1, timeout=20000)


def select(page: Page, element_id: str) -> None:
    # Zoom to the element (a view change only), then click it as a user would.
    page.evaluate(
        "id => { const c = window.itsmModeler.get('canvas'); c.zoom(1);"
        " c.scrollToElement(id, {top: 200, left: 300, right: 100, bottom: 100}); }",
        element_id,
    )
    element = page.locator(f".djs-element[data-element-id='{element_id}']").first
    box = element.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator(f"{PANEL} #bio-properties-panel-id")).to_have_value(element_id)


def open_group(page: Page, group: str) -> Any:
    """Expand a properties-panel section (they start collapsed)."""
    section = page.locator(f"{PANEL} [data-group-id='group-{group}']")
    header = section.locator(".bio-properties-panel-group-header").first
    if "open" not in (header.get_attribute("class") or ""):
        header.locator(".bio-properties-panel-group-header-title").click()
    return section


def check(page: Page, outcome: str) -> None:
    page.evaluate("document.getElementById('modeler').dataset.checked = ''")
    page.click("#check")
    expect(page.locator(f"#modeler[data-checked='{outcome}']")).to_have_count(1, timeout=20000)


def bundled_field_count(task: str = "record_incident") -> int:
    xml = BUNDLED_PROCESS.read_text(encoding="utf-8")
    body = re.search(rf'<bpmn:userTask id="{task}".*?</bpmn:userTask>', xml, re.S)
    assert body, task
    return body.group(0).count("<camunda:formField ")


def test_designer_edits_checks_fixes_and_deploys_a_form_field(chromium, server, api: Any) -> None:  # noqa: F811
    desk = Desk(chromium, server, api)
    page = desk.as_("designer")
    open_new_draft(page, desk.base)

    # Rename a task and add a form field in the properties panel.
    select(page, "record_incident")
    open_group(page, "general")
    page.fill(f"{PANEL} #bio-properties-panel-name", "Record, classify and locate")
    form_data = open_group(page, "CamundaPlatform__FormData")
    form_data.locator(
        ".bio-properties-panel-group-header-button.bio-properties-panel-add-entry"
    ).click()
    # The panel numbers a task's fields from 0: the new one comes after the bundled ones.
    new_field = f"#bio-properties-panel-record_incident-formField-{bundled_field_count()}"
    page.fill(f"{new_field}-formFieldID", "caller_location")
    page.fill(f"{new_field}-formFieldLabel", "Caller location")
    page.select_option(f"{new_field}-formFieldType", "string")
    check(page, "clean")

    # Break a gateway condition: the problem is pinned on the flow.
    select(page, "flow_escalation_yes")
    open_group(page, "CamundaPlatform__Condition")
    page.locator(CONDITION).first.fill("management_escalation ==")
    check(page, "problems")
    if os.environ.get("ITSM_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / "modeler.png"), full_page=True)
    expect(
        page.locator(".djs-element.has-problem[data-element-id='flow_escalation_yes']")
    ).to_have_count(1)
    expect(page.locator(".problem-badge")).to_have_count(1)
    expect(page.locator("#problems li[data-element='flow_escalation_yes']")).to_have_count(1)
    # Deploying now is refused, with the problem listed.
    page.fill("#note", "ask where the caller is")
    page.click("#deploy")
    expect(page.locator("#problems li[data-element='flow_escalation_yes']")).to_have_count(1)
    assert [v["version"] for v in api.ok(api.get("designer", "/process-definitions"))] == [1]

    # Fix it, check again, deploy.
    expect(page.locator("#modeler[data-ready='true']")).to_have_count(1, timeout=20000)
    select(page, "flow_escalation_yes")
    open_group(page, "CamundaPlatform__Condition")
    page.locator(CONDITION).first.fill("management_escalation")
    check(page, "clean")
    page.fill("#note", "ask where the caller is")
    page.click("#deploy")
    expect(page.locator(".flash.success")).to_contain_text("2")
    assert [v["version"] for v in api.ok(api.get("designer", "/process-definitions"))] == [1, 2]

    # A new incident runs on version 2: its first task asks for the location.
    s = Scenario(api)
    assert s.incident["process"]["version"] == 2
    clerk = desk.as_("desk")
    clerk.goto(f"{desk.base}/tasks/{desk.task_id(s.id, 'record_incident')}")
    expect(clerk.locator("#task-form [name='caller_location']")).to_have_count(1)
    expect(clerk.locator("#task-form")).to_contain_text("Caller location")
