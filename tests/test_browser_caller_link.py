"""A caller known only by address follows a signed link in Chromium against `itsm serve`:
the token leaves the address bar at once, a yes / no must be chosen, the survey closes
the incident, and the server's log never shows the token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from engine.persistence.models import Incident
from engine.services.context import ServiceContext
from engine.services.incidents.caller_links import caller_link
from tests.conftest import missing
from tests.scenario import Scenario
from tests.servers import Server
from tests.test_browser_e2e import CHROMIUM, LAUNCH_ARGS


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    # At DEBUG, whatever the server and its libraries log lands in its output.
    live = Server(database_url, env={"ITSM_LOG_LEVEL": "DEBUG"})
    yield live
    live.stop()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing("Debian's chromium (scripts/test.sh installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def test_a_caller_follows_the_link_confirms_and_answers_the_survey(
    api: Any, ctx: ServiceContext, server: Server, chromium: Browser
) -> None:
    body = {"title": "Projector", "channel": "phone", "caller_email": "guest@example.org"}
    created = api.ok(api.post("desk", "/incidents", body), 201)
    scenario = Scenario.__new__(Scenario)
    scenario.api, scenario.id, scenario.incident = api, created["id"], created
    scenario.record()
    scenario.desk_resolves()
    with ctx.db.read() as session:
        incident = session.get(Incident, scenario.id)
        assert incident is not None
        url = caller_link(ctx, incident, "guest@example.org", ctx.now(), "confirmation")
    path = url[len(ctx.channels.base_url) :]
    token = path.split("/c/", 1)[1].split("?", 1)[0]

    page = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(server.root + path)
    expect(page).to_have_url(f"{server.root}/c/incident#confirmation")
    assert token not in page.url
    assert page.evaluate("document.referrer") == ""
    form = page.locator("form#confirmation")
    yes = form.locator("input[name=recovered][value=true]")
    no = form.locator("input[name=recovered][value=false]")
    expect(yes).not_to_be_checked()
    expect(no).not_to_be_checked()
    # Nothing chosen: the browser asks for a choice, nothing is sent.
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{server.root}/c/incident#confirmation")
    assert scenario.open_tasks() == ["confirm_recovery"]
    yes.check()
    form.locator("textarea[name=comment]").fill("Works in room 3 again")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{server.root}/c/incident#answers")
    assert scenario.open_tasks() == ["record_feedback"]

    survey = page.locator("form#survey")
    survey.locator("input[name=satisfaction][value='4']").check()
    survey.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{server.root}/c/incident#answers")
    expect(page.locator("form#survey")).to_have_count(0)
    assert scenario.refresh()["status"] == "closed"
    actors = {e["actor"] for e in scenario.incident["events"] if e["type"] == "task_completed"}
    assert "guest@example.org" in actors

    server.process.terminate()
    output = server.process.communicate(timeout=10)[0].decode(errors="replace")
    assert token not in output
