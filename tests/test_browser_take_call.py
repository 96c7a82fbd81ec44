"""In a real browser (Playwright + Debian's Chromium against `itsm serve`): the desk
takes a call for a caller it looks up, and the caller then finds the incident in
their portal as their own."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, expect

from tests.servers import Server
from tests.test_browser_e2e import Desk, chromium, server

__all__ = ["chromium", "server"]  # the fixtures this module borrows


def test_desk_takes_a_call_the_caller_sees_in_the_portal(
    chromium: Browser, server: Server, api: Any
) -> None:
    desk = Desk(chromium, server, api)
    earlier = api.ok(
        api.post("reporter", "/incidents", {"title": "VPN drops", "channel": "web"}), 201
    )
    page = desk.as_("desk")
    page.goto(f"{desk.base}/incidents/new")
    page.fill("#caller-q", "report")
    page.locator("form[role=search] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r".*/incidents/callers\?q=report$"))
    page.locator("a[href$='/incidents/new?caller=reporter']").click()
    # The caller's open incident is offered as a possible duplicate.
    expect(page.locator("ul.duplicates")).to_contain_text(earlier["number"])
    report_form = page.locator("form[method=post][action$='/incidents/new']")
    report_form.locator("[name=title]").fill("Printer on 3F jams")
    report_form.locator("[name=description]").fill("Called at 10:05")
    report_form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r".*/incidents/\d+$"))
    incident_id = int(page.url.rsplit("/", 1)[1])

    portal = desk.as_("reporter")
    portal.goto(f"{desk.base}/incidents")
    expect(portal.locator("main")).to_contain_text("Printer on 3F jams")
    portal.goto(f"{desk.base}/incidents/{incident_id}")
    expect(portal.locator("main")).to_contain_text("Printer on 3F jams")
    detail = api.ok(api.get("manager", f"/incidents/{incident_id}"))
    assert detail["caller"]["username"] == "reporter"
    assert detail["events"][0]["actor"] == "desk"
