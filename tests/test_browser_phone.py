"""The inbox and the incident list on a phone (390 × 844, Chromium), and the language menu.

Issue 10, item 8: at 390 px the tables had one-character columns and Claim was pushed off
the screen. Now each row is a card (app.css, `table.cards`): no cell narrower than 60 px,
nothing wider than the screen, Claim inside the viewport. With ITSM_SCREENSHOTS=1 the
pages are saved to docs/phone-*.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import PASSWORD, Api
from tests.scenario import Scenario
from tests.servers import Server
from tests.test_browser_e2e import DOCS, chromium, server  # noqa: F401  (fixtures)

PHONE = {"width": 390, "height": 844}
NARROWEST_CELL = 60
LONG_TITLE = "打印機無法連線：三樓財務部的共用印表機從早上九點起完全無法列印 since 9:00"


@pytest.fixture
def phone(chromium: Browser, server: Server) -> Iterator[Any]:  # noqa: F811
    contexts = []

    def sign_in(username: str, language: str | None = None) -> Page:
        context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server.root}/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).not_to_have_url(f"{server.root}/login")
        if language:
            page.select_option("#locale", language)
            page.click("#locale-switch")
            expect(page.locator("html")).to_have_attribute("lang", language)
        return page

    sign_in.root = server.root  # type: ignore[attr-defined]
    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture
def incidents(api: Api) -> list[Scenario]:
    made = []
    for title in (LONG_TITLE, "VPN drops every hour", "Screen flickers"):
        scenario = Scenario(api)
        api.ok(api.patch("desk", f"/incidents/{scenario.id}", {"title": title}))
        made.append(scenario)
    made[1].record(impact="2", urgency="1")  # P2: a badge and an initial_handling task
    return made


def overflow(page: Page) -> int:
    """How far the page is wider than the screen (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def narrow_cells(page: Page, selector: str) -> list[str]:
    """Cells of the table's rows that are shown narrower than NARROWEST_CELL pixels."""
    found: list[str] = page.evaluate(
        """([selector, least]) => [...document.querySelectorAll(selector + ' tbody td')]
            .filter(td => td.offsetParent !== null && td.textContent.trim() !== '')
            .map(td => [td.dataset.label || '?', td.getBoundingClientRect().width])
            .filter(([label, width]) => width < least)
            .map(([label, width]) => `${label}: ${Math.round(width)} px`)""",
        [selector, NARROWEST_CELL],
    )
    return found


def inside_viewport(page: Page, box: dict[str, float] | None) -> bool:
    width = page.viewport_size["width"] if page.viewport_size else PHONE["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("ITSM_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name), full_page=True)


@pytest.mark.parametrize("language", [None, "en"])  # zh-Hant (default), then English
def test_the_inbox_on_a_phone(phone: Any, incidents: list[Scenario], language: str | None):
    page = phone("desk", language)
    page.goto(f"{phone.root}/tasks")
    rows = page.locator("table.cards tbody tr")
    expect(rows).to_have_count(3)
    assert overflow(page) <= 0
    assert narrow_cells(page, "table.cards") == []
    claims = page.locator("table.cards tbody button[type=submit]")
    expect(claims).to_have_count(3)
    for index in range(3):
        claim = claims.nth(index)
        claim.scroll_into_view_if_needed()
        assert inside_viewport(page, claim.bounding_box()), index
        assert claim.bounding_box()["height"] >= 44  # type: ignore[index]  # a finger's size
    if language is None:
        screenshot(page, "phone-inbox.png")
    claims.first.click()
    expect(page).to_have_url(f"{phone.root}/tasks")
    expect(page.locator("table.cards tbody button[type=submit]").first).to_have_text(
        "Release" if language == "en" else "釋出"
    )


@pytest.mark.parametrize("language", [None, "en"])
def test_the_incident_list_on_a_phone(
    phone: Any, incidents: list[Scenario], language: str | None
) -> None:
    page = phone("manager", language)
    page.goto(f"{phone.root}/incidents")
    expect(page.locator("table.cards tbody tr")).to_have_count(3)
    assert overflow(page) <= 0
    assert narrow_cells(page, "table.cards") == []
    title = page.locator("table.cards tbody td", has_text="三樓財務部").first
    assert inside_viewport(page, title.bounding_box())
    sort = page.locator("table.cards thead a").first  # the sort links stay reachable
    expect(sort).to_be_visible()
    assert inside_viewport(page, sort.bounding_box())
    if language is None:
        screenshot(page, "phone-incidents.png")


def test_the_reporters_pages_fit_a_phone(phone: Any, incidents: list[Scenario]) -> None:
    page = phone("reporter")
    page.goto(f"{phone.root}/incidents/{incidents[0].id}")
    expect(page.locator("h1")).to_contain_text("三樓財務部")
    assert overflow(page) <= 0
    page.goto(f"{phone.root}/incidents")
    assert overflow(page) <= 0
    assert narrow_cells(page, "table.cards") == []


def test_the_wide_layout_is_still_a_table(phone: Any, chromium: Browser, server: Server,  # noqa: F811
                                          incidents: list[Scenario]) -> None:
    page = phone("desk")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server.root}/tasks")
    header = page.locator("table.cards thead th").nth(1)  # "Title": no sort link
    expect(header).to_be_visible()
    cells = page.locator("table.cards tbody tr").first.locator("td")
    tops = {round(cells.nth(i).bounding_box()["y"]) for i in range(3)}  # type: ignore[index]
    assert len(tops) == 1  # side by side in one row


def test_arrowing_through_the_language_menu_does_not_reload(phone: Any) -> None:
    page = phone("desk")
    page.goto(f"{phone.root}/tasks")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    page.evaluate("window.stillHere = true")
    menu = page.locator("#locale")
    menu.focus()
    menu.press("ArrowDown")
    menu.press("ArrowUp")
    menu.press("ArrowDown")
    page.wait_for_timeout(500)  # a submit on change would have started by now
    assert page.evaluate("window.stillHere === true")  # the same document: no reload
    assert menu.input_value() == "en"
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    page.click("#locale-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(f"{phone.root}/tasks")
    assert page.evaluate("window.stillHere === undefined")
