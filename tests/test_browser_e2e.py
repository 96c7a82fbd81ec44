"""Real browser walks (Playwright driving Debian's Chromium) against `itsm serve`.

Every role signs in in turn and works its step in the browser. With
ITSM_SCREENSHOTS=1 the README's screenshots (docs/*.png) are saved from these runs.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import PASSWORD
from tests.scenario import Scenario
from tests.servers import ROOT, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = ROOT / "docs"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    live = Server(database_url)
    yield live
    live.stop()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium (scripts/test.sh does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Desk:
    """One browser context per signed-in user."""

    def __init__(self, chromium: Browser, server: Server, api: Any) -> None:
        self.chromium = chromium
        self.base = f"http://127.0.0.1:{server.port}"
        self.api = api
        self.pages: dict[str, Page] = {}

    def as_(self, username: str) -> Page:
        if username not in self.pages:
            context = self.chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{self.base}/login")
            page.fill("#username", username)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page).not_to_have_url(f"{self.base}/login")
            self.pages[username] = page
        return self.pages[username]

    def task_id(self, incident_id: int, name: str) -> str:
        detail = self.api.ok(self.api.get("manager", f"/incidents/{incident_id}"))
        ids = [t["id"] for t in detail["tasks"] if t["name"] == name]
        assert len(ids) == 1, (name, detail["tasks"])
        return str(ids[0])

    def work(self, username: str, incident_id: int, name: str, fill: dict[str, Any],
             screenshot: str | None = None) -> Page:
        """Open the task from the inbox, fill the form, submit, land back (PRG)."""
        page = self.as_(username)
        task_id = self.task_id(incident_id, name)
        page.goto(f"{self.base}/tasks")
        link = page.locator(f"a[href$='/tasks/{task_id}']").first
        expect(link).to_be_visible()
        link.click()
        expect(page).to_have_url(f"{self.base}/tasks/{task_id}")
        form = page.locator("#task-form")
        for field, value in fill.items():
            control = form.locator(f"[name='{field}']")
            kind = control.first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
            if kind.startswith("select"):
                control.first.select_option(str(value))
            elif kind.endswith(":checkbox"):
                control.first.set_checked(bool(value))
            elif kind.endswith(":radio"):
                # A required boolean is a yes / no pair whose values are "true" / "false".
                choice = ("true" if value else "false") if isinstance(value, bool) else value
                form.locator(f"[name='{field}'][value='{choice}']").check()
            else:
                control.first.fill(str(value))
        if screenshot and os.environ.get("ITSM_SCREENSHOTS") == "1":
            page.screenshot(path=str(DOCS / screenshot), full_page=True)
        form.locator("button[type=submit]").click()
        expect(page).not_to_have_url(f"{self.base}/tasks/{task_id}")
        return page


def report(desk: Desk, title: str) -> int:
    page = desk.as_("reporter")
    page.goto(f"{desk.base}/incidents/new")
    page.fill("[name=title]", title)
    page.fill("[name=description]", "The mail server rejects every message since 9:00.")
    page.fill("[name=contact]", "ext. 1234")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r".*/incidents/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def open_task_names(desk: Desk, incident_id: int) -> list[str]:
    detail = desk.api.ok(desk.api.get("manager", f"/incidents/{incident_id}"))
    return sorted(t["name"] for t in detail["tasks"])


def test_full_escalation_path_in_the_browser(chromium, server, api):
    desk = Desk(chromium, server, api)
    incident = report(desk, "郵件伺服器停止服務")
    reporter_page = desk.as_("reporter")
    expect(reporter_page.locator("body")).to_contain_text("郵件伺服器停止服務")

    inbox = desk.as_("desk")
    inbox.goto(f"{desk.base}/tasks")
    expect(inbox.locator("body")).to_contain_text("郵件伺服器停止服務")
    if os.environ.get("ITSM_SCREENSHOTS") == "1":
        inbox.screenshot(path=str(DOCS / "inbox.png"), full_page=True)

    desk.work("desk", incident, "record_incident",
              {"category": "network", "impact": "2", "urgency": "2"}, screenshot="task-form.png")
    assert open_task_names(desk, incident) == ["initial_handling"]
    desk.work("desk", incident, "initial_handling", {"resolved_at_desk": False})
    desk.work("l2", incident, "level2_investigation", {"level2_outcome": "escalate_level3"})
    desk.work("l3", incident, "level3_investigation", {"level3_outcome": "escalate_vendor"})
    assert open_task_names(desk, incident) == ["vendor_investigation"]
    desk.work("vendor", incident, "vendor_investigation", {"solution": "Apply firmware 2.1"})
    assert open_task_names(desk, incident) == ["level3_resolve"]
    desk.work("l3", incident, "level3_resolve", {"resolution": "Firmware applied"})

    # The reporter sees the resolution in plain language.
    reporter_page.goto(f"{desk.base}/incidents/{incident}")
    expect(reporter_page.locator("body")).to_contain_text("Firmware applied")

    desk.work("desk", incident, "confirm_recovery", {"recovered": True})
    desk.work("desk", incident, "record_feedback", {"satisfaction": "5", "feedback": "快速"})
    detail = api.ok(api.get("manager", f"/incidents/{incident}"))
    assert detail["status"] == "closed"
    types = [e["type"] for e in detail["events"]]
    assert types.count("technical_escalation") == 3

    page = desk.as_("manager")
    page.goto(f"{desk.base}/incidents/{incident}")
    expect(page.locator("body")).to_contain_text(detail["number"])
    # Completed steps are marked on the diagram.
    expect(page.locator(".djs-element.done[data-element-id='vendor_investigation']")).to_have_count(1)


def test_p1_through_manager_and_director_reviews(chromium, server, api):
    desk = Desk(chromium, server, api)
    incident = report(desk, "Core switch down")
    desk.work("desk", incident, "record_incident",
              {"category": "network", "impact": "1", "urgency": "1"})
    assert open_task_names(desk, incident) == ["initial_handling", "manager_review"]

    manager = desk.as_("manager")
    manager.goto(f"{desk.base}/incidents/{incident}")
    # The current steps are highlighted on the diagram.
    for element in ("initial_handling", "manager_review"):
        expect(manager.locator(f".djs-element.current[data-element-id='{element}']")
               ).to_have_count(1)
    if os.environ.get("ITSM_SCREENSHOTS") == "1":
        manager.screenshot(path=str(DOCS / "incident.png"), full_page=True)

    desk.work("manager", incident, "manager_review", {"manager_acknowledged": True})
    assert open_task_names(desk, incident) == ["director_review", "initial_handling"]
    desk.work("director", incident, "director_review", {"director_acknowledged": True})
    desk.work("desk", incident, "initial_handling",
              {"resolved_at_desk": True, "resolution": "Power-cycled the switch"})
    desk.work("desk", incident, "confirm_recovery", {"recovered": True})
    desk.work("desk", incident, "record_feedback", {"satisfaction": "4"})
    detail = api.ok(api.get("manager", f"/incidents/{incident}"))
    assert detail["status"] == "closed"
    assert detail["priority"] == 1 and detail["major"] is True


def test_phone_sized_screen_and_keyboard_only(chromium, server, api):
    base = f"http://127.0.0.1:{server.port}"
    context = chromium.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    # Sign in with the keyboard alone: labelled fields, Tab and Enter.
    page.goto(f"{base}/login")
    page.keyboard.press("Tab")  # the skip link comes first
    page.locator("#username").focus()
    page.keyboard.type("desk")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/tasks")
    incident = Scenario(api)
    for path in ("/tasks", "/incidents", f"/incidents/{incident.id}", "/incidents/new",
                 f"/tasks/{incident.task_id('record_incident')}"):
        page.goto(base + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, (path, overflow)
    for label in page.locator("form#task-form input, form#task-form select").all():
        # Every control on the task form has a label.
        control_id = label.get_attribute("id")
        if control_id:
            assert page.locator(f"label[for='{control_id}']").count() == 1, control_id
    context.close()
