"""The modeler in a real browser: a designer renames a step in zh-Hant in the properties
panel's extension properties, deploys, and the desk's Chinese inbox shows the new name."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.scenario import Scenario
from tests.test_browser_e2e import Desk, chromium, server  # noqa: F401  (fixtures)
from tests.test_browser_modeler import check, open_group, open_new_draft, select


def test_designer_renames_a_step_in_chinese_in_the_modeler(chromium, server, api: Any) -> None:  # noqa: F811
    desk = Desk(chromium, server, api)
    page = desk.as_("designer")
    open_new_draft(page, desk.base)

    select(page, "initial_handling")
    properties = open_group(page, "CamundaPlatform__ExtensionProperties")
    # The bundled task's properties: its zh-Hant name first (docs/process.md).
    item = properties.locator(".bio-properties-panel-collapsible-entry").first
    expect(item).to_contain_text("name@zh_Hant_TW")
    item.locator(".bio-properties-panel-collapsible-entry-header").first.click()
    inputs = item.locator("input")
    expect(inputs.nth(0)).to_have_value("name@zh_Hant_TW")
    value = inputs.nth(1)
    expect(value).to_have_value("初步處理")
    value.fill("第一線檢視")
    check(page, "clean")
    page.fill("#note", "renamed in Chinese")
    page.click("#deploy")
    expect(page.locator(".flash.success")).to_contain_text("2")

    incident = Scenario(api)
    assert incident.incident["process"]["version"] == 2
    incident.record()
    clerk = desk.as_("desk")  # zh-Hant, the default language
    clerk.goto(f"{desk.base}/tasks")
    row = clerk.locator("tr", has_text=incident.incident["number"])
    expect(row).to_contain_text("第一線檢視")
    clerk.goto(f"{desk.base}/tasks/{desk.task_id(incident.id, 'initial_handling')}")
    expect(clerk.locator("h1")).to_contain_text("第一線檢視")
